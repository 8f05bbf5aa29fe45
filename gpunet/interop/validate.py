"""Checks of a saved architecture and its weights that need no layer built: what a file says
is compared with what the layer registry accepts before anything is allocated for it.

Written for safetensors files; nothing here depends on the container, so `.npz` loading can call
the same two functions with the shapes it finds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gpunet.layers import _windows as im
from gpunet.layers import registry

Shapes = dict[str, tuple[int, ...]]


def _count(config: dict[str, Any], key: str, owner: str) -> int:
    v = config.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{owner}: {key} must be a positive int, got {v!r}")
    return v


def _dense(config: dict[str, Any], owner: str) -> Shapes:
    n_in, n_out = _count(config, "in_features", owner), _count(config, "out_features", owner)
    return {"W": (n_in, n_out), "b": (n_out,)}


def _conv(config: dict[str, Any], owner: str) -> Shapes:
    c, f = _count(config, "in_channels", owner), _count(config, "out_channels", owner)
    kh, kw = im.pair(config.get("kernel_size"), "kernel_size", owner, 1)
    return {"W": (f, c, kh, kw), "b": (f,)}


# Parameter shapes from a layer's config, by class name. A class listed in neither table (one
# added later) may provide `param_shapes(config)` itself; otherwise its weights are checked only
# by `set_weights` once it is built.
PARAM_SHAPES: dict[str, Callable[[dict[str, Any], str], Shapes]] = {
    "Dense": _dense, "Conv2D": _conv}
NO_PARAMS = {"Flatten", "Dropout", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
             "MaxPool2D", "AvgPool2D", "L2Pool2D"}


def check_architecture(arch: Any, where: str) -> None:
    """Raise ValueError unless `arch` is {"layers": [{"class", "config"}, ...], "input_shape"}
    with registered classes whose constructors accept the configs."""
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list) \
            or not arch["layers"]:
        raise ValueError(f"{where}: architecture must be an object with a non-empty "
                         f"'layers' list, got {str(arch)[:80]!r}")
    shape = arch.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise ValueError(f"{where}: input_shape must be null or a list of positive ints, "
                         f"got {shape!r}")
    classes = registry()
    for i, spec in enumerate(arch["layers"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
            raise ValueError(f"{where}: layer {i} must be {{'class', 'config'}}, got {spec!r}")
        cls = classes.get(spec.get("class"))
        if cls is None:
            raise ValueError(f"{where}: layer {i} has unknown layer class {spec.get('class')!r}")
        try:
            inspect.signature(cls).bind(**spec["config"])
        except TypeError as exc:
            raise ValueError(f"{where}: layer {i} {cls.__name__} config {spec['config']}: "
                             f"{exc}") from exc


def expected_shapes(spec: dict[str, Any], owner: str) -> Shapes | None:
    """The parameter shapes layer `spec` will have, or None when this cannot be told unbuilt."""
    name = spec["class"]
    if name in NO_PARAMS:
        return {}
    if name in PARAM_SHAPES:
        return PARAM_SHAPES[name](spec["config"], owner)
    own = getattr(registry().get(name), "param_shapes", None)
    return {k: tuple(v) for k, v in own(spec["config"]).items()} if own else None


def check_weights(arch: dict[str, Any], shapes: dict[str, tuple[int, ...]], where: str) -> None:
    """Raise ValueError unless the file's tensors (name → shape) are exactly the weights the
    (checked) architecture declares, each with its shape."""
    expected: dict[str, tuple[int, ...]] = {}
    free: set[str] = set()  # prefixes of layers whose shapes only set_weights can check
    for i, spec in enumerate(arch["layers"]):
        owner = f"{where}: layer {i} {spec['class']}"
        try:
            own = expected_shapes(spec, owner)
        except ValueError as exc:
            raise ValueError(str(exc) if str(exc).startswith(owner) else f"{owner}: {exc}") \
                from exc
        if own is None:
            free.add(f"layer{i}.")
        else:
            expected.update({f"layer{i}.{k}": v for k, v in own.items()})
    for key, shape in expected.items():
        if key not in shapes:
            raise ValueError(f"{where}: weight {key} is missing (the architecture declares it "
                             f"with shape {shape})")
        if tuple(shapes[key]) != shape:
            raise ValueError(f"{where}: weight {key} has shape {tuple(shapes[key])}, the "
                             f"architecture declares {shape}")
    extra = sorted(k for k in shapes if k not in expected
                   and not any(k.startswith(p) for p in free))
    if extra:
        raise ValueError(f"{where}: tensors the architecture does not declare: "
                         f"{', '.join(extra[:5])}")
