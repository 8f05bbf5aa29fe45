"""`load_model`: rebuild a model saved with `Sequential.save`, judging the file first.

A model file must hold a `__meta__` JSON header with an "architecture" (a list of layers, each
{"class": a gpunet layer name, "config": its constructor arguments}) and, for every parameter
of every layer, an entry `layer<i>.<name>` of floating-point values, finite, shaped as the
architecture says, and nothing else. All of that is checked from the headers, before any layer
is built (see `gpunet.architecture`, shared with `.safetensors` files).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gpunet import serialization
from gpunet.architecture import build, check_entries, declared_weights, layer_specs
from gpunet.model import Sequential
from gpunet.serialization import FileFormatError


def load_model(path: str | os.PathLike, device: str = "auto") -> Sequential:
    """Rebuild a model saved with `Sequential.save` (no pickle: nothing in the file can run).

    Raises FileNotFoundError for a missing file and `FileFormatError` (a ValueError naming the
    file and what is wrong) for anything else: not a gpunet file, a training checkpoint, an
    unknown layer, missing, misshapen or non-finite weights.
    """
    if str(path).endswith(".safetensors"):
        from gpunet.interop import safetensors

        arrays, meta = safetensors.read_model(path)
    else:
        arrays, meta = _read_npz(path)
    arch = meta["architecture"]  # checked by both readers, with every weight, before this
    model = Sequential(build(path, layer_specs(path, arch)), device=device,
                       input_shape=arch.get("input_shape"))
    model.set_weights(arrays)
    return model


def _read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(weights, meta) of a `.npz` model: architecture and entries checked before reading."""
    with serialization.open_npz(path) as f:
        if f.meta.get("kind") == "checkpoint":
            raise FileFormatError(
                f"{path}: is a training checkpoint, not a saved model; continue training from "
                f"it with model.fit(..., resume={os.fspath(path)!r}) or gpunet-train --resume "
                f"{os.fspath(path)}, and save the model with model.save or gpunet-train --save")
        _, wanted = declared_weights(path, f.meta)
        check_entries(path, wanted, f.names, f.header)
        return {key: f.read_float(key, shape) for key, shape in wanted.items()}, f.meta
