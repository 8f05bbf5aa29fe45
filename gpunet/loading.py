"""`load_model`: rebuild a model saved with `Sequential.save`, judging the file first.

A model file must hold a `__meta__` JSON header with an "architecture" (a list of layers, each
{"class": a gpunet layer name, "config": its constructor arguments}) and, for every parameter
of every layer, an entry `layer<i>.<name>` of floating-point values, finite, shaped as the
architecture says. All of that is checked from the headers, before any layer is built (a 1 KB
file declaring Dense(10000, 10000) allocates nothing); entries no layer needs are never read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gpunet import backend, serialization
from gpunet.layers import registry
from gpunet.model import Sequential
from gpunet.serialization import FileFormatError, NpzReader

Shapes = dict[str, tuple[int, ...]]


def _positive(config: dict[str, Any], key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key} must be a positive int, got {value!r}")
    return value


def _pair(value: Any, key: str) -> tuple[int, int]:
    pair = [value, value] if isinstance(value, int) else value
    if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{key} must be a positive int or two of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _dense(c: dict[str, Any]) -> Shapes:
    n_in, n_out = _positive(c, "in_features"), _positive(c, "out_features")
    return {"W": (n_in, n_out), "b": (n_out,)}


def _conv(c: dict[str, Any]) -> Shapes:
    n_in, n_out = _positive(c, "in_channels"), _positive(c, "out_channels")
    return {"W": (n_out, n_in, *_pair(c.get("kernel_size"), "kernel_size")), "b": (n_out,)}


# The parameter shapes each layer class creates from its config. A layer class missing here
# has no parameters (tests/test_loading.py checks this table against every registered layer).
PARAM_SHAPES: dict[str, Callable[[dict[str, Any]], Shapes]] = {"Dense": _dense, "Conv2D": _conv}


def _layer_specs(path: Any, arch: Any) -> list[tuple[str, dict[str, Any]]]:
    """The architecture's (class, config) pairs, each checked for form and known class."""
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list) \
            or not arch["layers"]:
        raise FileFormatError(f"{path}: the architecture must hold a non-empty list 'layers'")
    classes, specs = registry(), []
    for i, spec in enumerate(arch["layers"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) \
                or not isinstance(spec.get("class"), str):
            raise FileFormatError(f"{path}: layer {i} of the architecture must be "
                                  f"{{'class': name, 'config': {{...}}}}, got {spec!r:.200}")
        if spec["class"] not in classes:
            raise FileFormatError(f"{path}: layer {i}: unknown layer class {spec['class']!r}; "
                                  f"known: {sorted(classes)}")
        specs.append((spec["class"], spec["config"]))
    shape = arch.get("input_shape")
    if shape is not None and (not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
        raise FileFormatError(f"{path}: input_shape must be null or a list of positive ints, "
                              f"got {shape!r:.200}")
    return specs


def expected_weights(path: Any, specs: list[tuple[str, dict[str, Any]]]) -> Shapes:
    """{"layer<i>.<name>": shape} for every parameter the architecture declares."""
    wanted: Shapes = {}
    for i, (cls, config) in enumerate(specs):
        try:
            shapes = PARAM_SHAPES[cls](config) if cls in PARAM_SHAPES else {}
        except ValueError as exc:
            raise FileFormatError(f"{path}: layer {i} ({cls}): {exc}") from exc
        wanted.update({f"layer{i}.{k}": v for k, v in shapes.items()})
    return wanted


def _check_entries(f: NpzReader, wanted: Shapes) -> None:
    """Every declared weight present, floating point, of the declared shape (headers only)."""
    missing = [k for k in wanted if k not in f.names]
    if missing:
        raise FileFormatError(f"{f.path}: the architecture needs {len(wanted)} weight arrays "
                              f"but {len(missing)} are missing: {', '.join(missing[:8])}")
    for key, shape in wanted.items():
        got, dtype = f.header(key)
        if got != shape or dtype.kind != "f":
            raise FileFormatError(f"{f.path}: entry {key!r} is {got} of {dtype}; the "
                                  f"architecture needs floating point of shape {shape}")


def _build(path: Any, specs: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    classes, layers = registry(), []
    state = backend.get_rng_state()  # building layers draws init weights; don't move the RNG
    try:
        for i, (cls, config) in enumerate(specs):
            try:
                layers.append(classes[cls](**config))
            except (TypeError, ValueError) as exc:
                raise FileFormatError(f"{path}: layer {i} ({cls}) cannot be built from its "
                                      f"config {config!r:.200}: {exc}") from exc
    finally:
        backend.set_rng_state(state)
    return layers


def load_model(path: str | os.PathLike, device: str = "auto") -> Sequential:
    """Rebuild a model saved with `Sequential.save` (no pickle: nothing in the file can run).

    Raises FileNotFoundError for a missing file and `FileFormatError` (a ValueError naming the
    file and what is wrong) for anything else: not a gpunet file, a training checkpoint, an
    unknown layer, missing, misshapen or non-finite weights.
    """
    if str(path).endswith(".safetensors"):
        return _load_safetensors(path, device)
    with serialization.open_npz(path) as f:
        if f.meta.get("kind") == "checkpoint":
            raise FileFormatError(
                f"{path}: is a training checkpoint, not a saved model; continue training from "
                f"it with model.fit(..., resume={os.fspath(path)!r}) or gpunet-train --resume "
                f"{os.fspath(path)}, and save the model with model.save or gpunet-train --save")
        if "architecture" not in f.meta:
            raise FileFormatError(f"{path}: holds no model architecture (__meta__ has no "
                                  "'architecture'); is it a gpunet model file?")
        arch = f.meta["architecture"]
        specs = _layer_specs(path, arch)
        wanted = expected_weights(path, specs)
        _check_entries(f, wanted)
        arrays = {key: f.read_float(key, shape) for key, shape in wanted.items()}
    model = Sequential(_build(path, specs), device=device, input_shape=arch.get("input_shape"))
    model.set_weights(arrays)
    return model


def _load_safetensors(path: str | os.PathLike, device: str) -> Sequential:
    """A `.safetensors` model: `interop.safetensors.read_model` judges the header, the
    architecture and every weight (shape, dtype, finite) before anything is built."""
    from gpunet.interop import safetensors

    arrays, meta = safetensors.read_model(path)
    arch = meta["architecture"]
    model = Sequential(_build(path, _layer_specs(path, arch)), device=device,
                       input_shape=arch.get("input_shape"))
    model.set_weights(arrays)
    return model
