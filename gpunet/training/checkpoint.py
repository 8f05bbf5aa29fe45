"""Resumable training checkpoints: weights, optimizer state, the next epoch, the RNG state and
the state of fit's CallbackList (the History so far included), in one atomically written
`.npz` (no pickle)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gpunet import backend, serialization


def save_checkpoint(path: str | os.PathLike, model: Any, next_epoch: int,
                    callbacks: Any) -> None:
    """Write the state to resume at `next_epoch`; `callbacks` is fit's CallbackList."""
    arrays: dict[str, Any] = {"flat_params": model.flat_params}
    opt_meta = {}
    for key, value in model.optimizer.state_dict().items():
        if isinstance(value, (np.ndarray,)) or backend.is_gpu_array(value):
            arrays[f"optimizer/{key}"] = value
        else:
            opt_meta[key] = value
    for key, value in callbacks.get_arrays().items():
        arrays[f"callbacks/{key}"] = value
    meta = {"kind": "checkpoint", "architecture": model.architecture(),
            "next_epoch": next_epoch, "rng": backend.get_rng_state(), "optimizer": opt_meta,
            "optimizer_class": type(model.optimizer).__name__,
            "callbacks": callbacks.get_state()}
    serialization.write_npz(path, arrays, meta)


def load_checkpoint(path: str | os.PathLike, model: Any, callbacks: Any) -> dict[str, Any]:
    """Restore model, optimizer, RNG and `callbacks` (a CallbackList, its model set) in place;
    return the meta."""
    arrays, meta = serialization.read_npz(path)
    if meta.get("kind") != "checkpoint":
        raise ValueError(f"{path}: not a training checkpoint (a saved model? load it with "
                         "gn.load_model)")
    if meta["architecture"]["layers"] != model.architecture()["layers"]:
        raise ValueError(f"{path}: the checkpoint's architecture differs from this model's")
    if meta["optimizer_class"] != type(model.optimizer).__name__:
        raise ValueError(f"{path}: checkpoint optimizer {meta['optimizer_class']}, this run uses "
                         f"{type(model.optimizer).__name__}")
    model.relink_params()
    model.flat_params[...] = backend.to_xp(arrays["flat_params"], model.xp)
    opt_state = dict(meta["optimizer"])
    opt_state.update({k.split("/", 1)[1]: v for k, v in arrays.items()
                      if k.startswith("optimizer/")})
    model.optimizer.load_state_dict(opt_state)
    callbacks.set_state(meta["callbacks"], {k.split("/", 1)[1]: v for k, v in arrays.items()
                                            if k.startswith("callbacks/")})
    backend.set_rng_state(meta["rng"])
    return meta
