"""Checking and splitting the arrays handed to fit/evaluate/predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.checks import check_positive_int


@dataclass
class FitData:
    """Checked host arrays for one `fit`: training x, y and validation xv, yv (or None)."""

    x: np.ndarray
    y: np.ndarray
    xv: np.ndarray | None = None
    yv: np.ndarray | None = None


def fit_data(model: Any, x: Any, y: Any, validation_split: float,
             validation_data: Any) -> FitData:
    """The training and validation arrays of `fit`, checked (validation_data wins over
    validation_split, as in Keras)."""
    x, y = check_xy(x, y, model, "fit")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = f"{type(validation_data).__name__} of length {len(validation_data)}" \
                if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__
            raise ValueError(f"fit: validation_data must be a tuple (x_val, y_val), got {got}")
        xv, yv = check_xy(*validation_data, model, "fit(validation_data)")
        return FitData(x, y, xv, yv)
    if validation_split:
        return FitData(*split_validation(x, y, validation_split))
    return FitData(x, y)


def check_x(x: Any, model: Any, where: str) -> np.ndarray:
    """Host float32 x with a batch axis and the model's sample shape (empty allowed)."""
    x = backend.to_numpy(x)
    if x.ndim < 2:
        raise ValueError(f"{where}: x must have a batch axis, got shape {x.shape}")
    expected = model.input_shape
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{where}: x samples must have shape {tuple(expected)} for this model's "
                         f"first layer {model.layers[0]!r}, got {tuple(x.shape[1:])}")
    return x if x.dtype == np.float32 else x.astype(np.float32)


def check_xy(x: Any, y: Any, model: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Host float32 x and integer (or float target) y, with matching lengths and shapes."""
    x = check_x(x, model, where)
    y = backend.to_numpy(y)
    if len(x) != len(y):
        raise ValueError(f"{where}: x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: x contains NaN or inf")
    if y.ndim == 1:
        y = _check_labels(y, model, where)
    else:
        y = y.astype(np.float32, copy=False)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _check_labels(y: np.ndarray, model: Any, where: str) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise ValueError(f"{where}: class labels y must be integers, got dtype {y.dtype}")
    shape = model.output_shape
    n_outputs = shape[0] if shape is not None and len(shape) == 1 else None
    if n_outputs is not None and (y.min() < 0 or y.max() >= n_outputs):
        raise ValueError(f"{where}: labels must be in [0, {n_outputs}) for a model with "
                         f"{n_outputs} outputs, got values in [{y.min()}, {y.max()}]")
    return y.astype(np.int32, copy=False)


def check_batch_size(where: str, batch_size: Any) -> int:
    return check_positive_int(where, "batch_size", batch_size)


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
