"""Checking and splitting the arrays handed to fit/evaluate."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet import backend


def check_xy(x: Any, y: Any, model: Any, n_outputs: int | None, where: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """Host float32 x and integer (or float target) y, with matching lengths and shapes."""
    x = backend.to_numpy(x)
    y = backend.to_numpy(y)
    if x.ndim < 2:
        raise ValueError(f"{where}: x must have a batch axis, got shape {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"{where}: x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty")
    expected = model.input_shape
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{where}: x samples must have shape {tuple(expected)} for this model's "
                         f"first layer {model.layers[0]!r}, got {tuple(x.shape[1:])}")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: x contains NaN or inf")
    if y.ndim == 1:
        if y.dtype.kind not in "iu":
            raise ValueError(f"{where}: class labels y must be integers, got dtype {y.dtype}")
        if n_outputs is not None and (y.min() < 0 or y.max() >= n_outputs):
            raise ValueError(f"{where}: labels must be in [0, {n_outputs}) for a model with "
                             f"{n_outputs} outputs, got values in [{y.min()}, {y.max()}]")
        y = y.astype(np.int32, copy=False)
    else:
        y = y.astype(np.float32, copy=False)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras semantics: the LAST `fraction` of the samples, taken before any shuffling."""
    if not 0 < fraction < 1:
        raise ValueError(f"fit: validation_split must be in (0, 1), got {fraction!r}")
    n_val = int(len(x) * fraction)
    n_train = len(x) - n_val
    if n_val == 0 or n_train == 0:
        raise ValueError(f"fit: validation_split={fraction} of {len(x)} samples leaves "
                         f"{n_train} for training and {n_val} for validation; both must be > 0")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
