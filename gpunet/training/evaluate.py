"""Inference: `evaluate` (mean loss and accuracy) and `predict` (a NumPy array), in batches."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.training.data import check_xy
from gpunet.training.shards import Shards, resolve_workers


def evaluate_arrays(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int,
                    shards: Any = None) -> dict[str, float]:
    """Mean loss and accuracy over checked host arrays, summed on the device, read once
    (each batch shared between CPU threads when `shards` are given)."""
    forward = model.forward if shards is None else shards.forward
    xp = model.xp
    loss_sum = xp.zeros((), dtype=np.float64)
    correct = xp.zeros((), dtype=np.int64)
    for i in range(0, len(x), batch_size):
        xb = xp.asarray(x[i:i + batch_size])
        yb = xp.asarray(y[i:i + batch_size])
        out = forward(xb, training=False)
        loss, _ = model.loss.forward(out, yb)
        loss_sum += loss * len(xb)
        if yb.ndim == 1:
            correct += (out.argmax(axis=1) == yb).sum()
        elif yb.ndim == 2:
            correct += (out.argmax(axis=1) == yb.argmax(axis=1)).sum()
    return {"loss": float(loss_sum) / len(x), "accuracy": int(correct) / len(x)}


def evaluate(model: Any, x: Any, y: Any, batch_size: int = 1024,
             workers: int | str = "auto") -> dict[str, float]:
    if model.loss is None:
        raise RuntimeError("evaluate: call model.compile(loss=...) first")
    from gpunet.training.loop import _n_outputs

    n_workers = resolve_workers(model, workers, "evaluate", batch_size)
    x, y = check_xy(x, y, model, _n_outputs(model), "evaluate")
    with Shards.open(model, n_workers, training=False) or contextlib.nullcontext() as shards:
        return evaluate_arrays(model, x, y, batch_size, shards)


def predict(model: Any, x: Any, batch_size: int = 1024, workers: int | str = "auto") -> np.ndarray:
    """Model outputs for x as a host NumPy array."""
    n_workers = resolve_workers(model, workers, "predict", batch_size)
    x = backend.to_numpy(x)
    if model.input_shape is not None and tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"predict: x samples must have shape {tuple(model.input_shape)}, "
                         f"got {tuple(x.shape[1:])}")
    with Shards.open(model, n_workers, training=False) or contextlib.nullcontext() as shards:
        forward = model.forward if shards is None else shards.forward
        outs = [backend.to_numpy(forward(model.xp.asarray(x[i:i + batch_size], np.float32),
                                         training=False))
                for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
