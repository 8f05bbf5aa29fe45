"""A saved model's architecture and weights judged against each other before any layer is built.

Both file formats (`.npz`, `.safetensors`) go through the same steps: `layer_specs` (the
architecture is well formed and its registered classes' constructors accept the configs),
`expected_weights` (the parameter shapes those configs declare) and `check_entries` (the file
holds exactly those weights, floating point and of those shapes, judged from headers alone, so a
1 KB file declaring Dense(10000, 10000) allocates nothing). Each problem is one
`FileFormatError` naming the file and, where there is one, the layer.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.checks import check_positive_int, is_int
from gpunet.layers import _windows as win
from gpunet.layers import registry
from gpunet.serialization import FileFormatError

Shapes = dict[str, tuple[int, ...]]
Spec = tuple[str, dict[str, Any]]  # (layer class name, constructor config)


def _dense(c: dict[str, Any]) -> Shapes:
    n_in = check_positive_int("config", "in_features", c.get("in_features"))
    n_out = check_positive_int("config", "out_features", c.get("out_features"))
    return {"W": (n_in, n_out), "b": (n_out,)}


def _conv(c: dict[str, Any]) -> Shapes:
    n_in = check_positive_int("config", "in_channels", c.get("in_channels"))
    n_out = check_positive_int("config", "out_channels", c.get("out_channels"))
    return {"W": (n_out, n_in, *win.pair(c.get("kernel_size"), "kernel_size", "config", 1)),
            "b": (n_out,)}


# The parameter shapes each layer class creates from its config. A layer class missing here
# has no parameters (tests/test_architecture.py checks this table against every registered layer).
PARAM_SHAPES: dict[str, Callable[[dict[str, Any]], Shapes]] = {"Dense": _dense, "Conv2D": _conv}


def _spec(path: Any, i: int, spec: Any, classes: dict[str, type]) -> Spec:
    """Layer `i`'s (class, config): the form checked, the class known, the config bindable."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) \
            or not isinstance(spec.get("class"), str):
        raise FileFormatError(f"{path}: layer {i} of the architecture must be "
                              f"{{'class': name, 'config': {{...}}}}, got {spec!r:.200}")
    cls, config = spec["class"], spec["config"]
    if cls not in classes:
        raise FileFormatError(f"{path}: layer {i}: unknown layer class {cls!r}; "
                              f"known: {sorted(classes)}")
    try:
        inspect.signature(classes[cls]).bind(**config)
    except TypeError as exc:
        raise _unbuildable(path, i, cls, config, exc) from exc
    return cls, config


def layer_specs(path: Any, arch: Any) -> list[Spec]:
    """The architecture's (class, config) pairs, each checked for form, a registered class and
    a config its constructor accepts; `input_shape` null or positive ints."""
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list) \
            or not arch["layers"]:
        raise FileFormatError(f"{path}: the architecture must hold a non-empty list 'layers', "
                              f"got {arch!r:.80}")
    classes = registry()
    specs = [_spec(path, i, spec, classes) for i, spec in enumerate(arch["layers"])]
    shape = arch.get("input_shape")
    if shape is not None and (not isinstance(shape, list)
                              or not all(is_int(d) and d >= 1 for d in shape)):
        raise FileFormatError(f"{path}: input_shape must be null or a list of positive ints, "
                              f"got {shape!r:.200}")
    return specs


def expected_weights(path: Any, specs: list[Spec]) -> Shapes:
    """{"layer<i>.<name>": shape} for every parameter the architecture declares."""
    wanted: Shapes = {}
    for i, (cls, config) in enumerate(specs):
        try:
            shapes = PARAM_SHAPES[cls](config) if cls in PARAM_SHAPES else {}
        except ValueError as exc:
            raise FileFormatError(f"{path}: layer {i} ({cls}): {exc}") from exc
        wanted.update({f"layer{i}.{k}": v for k, v in shapes.items()})
    return wanted


def declared_weights(path: Any, meta: dict[str, Any]) -> tuple[list[Spec], Shapes]:
    """The checked layer specs of the file's architecture and the weights they declare."""
    if "architecture" not in meta:
        raise FileFormatError(f"{path}: holds no model architecture (its metadata has no "
                              "'architecture'); is it a gpunet model file?")
    specs = layer_specs(path, meta["architecture"])
    return specs, expected_weights(path, specs)


def check_entries(path: Any, wanted: Shapes, names: Iterable[str],
                  header: Callable[[str], tuple[tuple[int, ...], np.dtype]]) -> None:
    """The file's entries (`names`; `header(name)` gives one's declared shape and dtype) are
    exactly the weights in `wanted`, each floating point of its declared shape."""
    names = set(names)
    missing = [f"{k} of shape {shape}" for k, shape in wanted.items() if k not in names]
    if missing:
        raise FileFormatError(f"{path}: the architecture declares {len(wanted)} weight arrays "
                              f"but {len(missing)} are missing: {', '.join(missing[:8])}")
    extra = sorted(names - set(wanted))
    if extra:
        raise FileFormatError(f"{path}: holds tensors the architecture does not declare: "
                              f"{', '.join(extra[:8])}")
    for key, shape in wanted.items():
        got, dtype = header(key)
        if tuple(got) != shape or dtype.kind != "f":
            raise FileFormatError(f"{path}: entry {key!r} is {tuple(got)} of {dtype}; the "
                                  f"architecture declares floating point of shape {shape}")


def _unbuildable(path: Any, i: int, cls: str, config: dict[str, Any],
                exc: Exception) -> FileFormatError:
    return FileFormatError(f"{path}: layer {i} ({cls}) cannot be built from its config "
                           f"{config!r:.200}: {exc}")


@contextlib.contextmanager
def rng_kept() -> Iterator[None]:
    """Build layers inside: their initial weights are drawn without moving the global RNG."""
    state = backend.get_rng_state()
    try:
        yield
    finally:
        backend.set_rng_state(state)


def build(path: Any, specs: list[Spec]) -> list[Any]:
    """The layers of checked `specs` (the global RNG left where it was)."""
    classes, layers = registry(), []
    with rng_kept():
        for i, (cls, config) in enumerate(specs):
            try:
                layers.append(classes[cls](**config))
            except (TypeError, ValueError) as exc:
                raise _unbuildable(path, i, cls, config, exc) from exc
    return layers
