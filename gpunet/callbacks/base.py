"""The `Callback` base class and the small helpers every callback shares.

Hooks follow Keras: the trainer calls `set_model`, `on_train_begin`, then per epoch
`on_epoch_begin`, `on_batch_end` (logs hold "loss" only on the batches where the trainer read it
back from the device) and `on_epoch_end`, and finally `on_train_end`. Epochs and batches are
0-based. A callback stops training by setting `model.stop_training = True`.

Resumable state: `get_state()` returns JSON-able scalars/lists (non-finite floats are encoded as
the strings "inf", "-inf", "nan" so the result is strict JSON), `get_arrays()` returns host NumPy
arrays, and `set_state(state, arrays)` puts both back. Resume order: `set_model`, `set_state`,
`on_train_begin` (a callback whose state was just restored does not reset it at train begin);
calling `set_state` after `on_train_begin` works too. Arrays may be restored before `set_model`:
they are moved to the model's device when used.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.checks import check

Logs = dict[str, Any]
MODES = ("auto", "min", "max")


class Callback:
    """No-op hooks; subclasses override the ones they need."""

    model: Any = None
    # True for a callback that takes charge of a NaN/inf loss (TerminateOnNaN); without one,
    # `fit` raises FloatingPointError when the loss stops being finite
    handles_nonfinite: bool = False
    _resumed: bool = False  # set by set_state; keeps the next on_train_begin from resetting

    def __init__(self) -> None:
        self.model = None
        self._resumed = False

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called before epoch `epoch` (0-based)."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after batch `batch` (0-based within the epoch); "loss" only now and then."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called after epoch `epoch` with the epoch's metrics."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch, also when training stopped early.

        Subclasses that override it call `super().on_train_end(logs)`, which forgets a
        `set_state` made after `on_train_begin`, so that a later fit starts afresh.
        """
        self._resumed = False

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON-able counters and best values needed to resume training."""
        return {}

    def get_arrays(self) -> dict[str, np.ndarray]:
        """Host arrays needed to resume (e.g. best weights); empty for most callbacks."""
        return {}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        """Restore what `get_state`/`get_arrays` returned; the next train begin keeps it."""
        self._resumed = True

    def _fresh_start(self) -> bool:
        """True at a normal train begin; False (once) right after `set_state`."""
        resumed, self._resumed = self._resumed, False
        return not resumed

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- argument checks (the package's one vocabulary, gpunet.checks, plus two of their own) ----
def check_mode(owner: str, mode: Any) -> str:
    check(mode in MODES, owner, "mode", f"one of {MODES}", mode)
    return mode


def check_monitor(owner: str, monitor: Any) -> str:
    check(isinstance(monitor, str) and bool(monitor), owner, "monitor",
          "a non-empty metric name such as 'val_loss'", monitor)
    return monitor


# -- monitored values -------------------------------------------------------------------------
def direction(monitor: str, mode: str) -> str:
    """"min" or "max"; mode "auto" maximizes names containing "acc" (Keras' rule)."""
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def worst(direction_: str) -> float:
    return math.inf if direction_ == "min" else -math.inf


def monitor_value(owner: str, monitor: str, logs: Logs | None) -> float | None:
    """`logs[monitor]` as a float; None, with a warning naming the available keys, if absent."""
    logs = logs or {}
    value = logs.get(monitor)
    if value is None:
        warnings.warn(f"{owner} is conditioned on metric `{monitor}` which is not available. "
                      f"Available metrics are: {','.join(logs.keys())}", stacklevel=3)
        return None
    return float(value)


def encode_float(value: float | None) -> float | str | None:
    """Strict-JSON form of a float: non-finite values become "inf", "-inf" or "nan"."""
    if value is None or math.isfinite(value):
        return value
    return str(float(value))


def decode_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


# -- weights on the device --------------------------------------------------------------------
def snapshot(model: Any) -> Any:
    """A device copy of every weight (one contiguous array: NumPy or CuPy, like the model)."""
    if hasattr(model, "relink_params"):
        model.relink_params()
    return model.flat_params.copy()


def weights_to_arrays(weights: Any) -> dict[str, np.ndarray]:
    """`get_arrays` for a callback that keeps best weights: a host copy, or nothing."""
    return {} if weights is None else {"best_weights": backend.to_numpy(weights).copy()}


def weights_from_arrays(arrays: dict[str, Any] | None, model: Any) -> Any:
    """The best weights saved by `weights_to_arrays`, on the model's device when it has one."""
    best = (arrays or {}).get("best_weights")
    if best is not None and model is not None:
        best = backend.to_xp(best, model.xp)
    return best


def restore(model: Any, weights: Any, owner: str) -> None:
    """Write a `snapshot` (device or host array) back into the model's flat parameters."""
    if hasattr(model, "relink_params"):
        model.relink_params()
    if tuple(weights.shape) != tuple(model.flat_params.shape):
        raise ValueError(f"{owner}: saved weights hold {weights.size} values but the model has "
                         f"{model.flat_params.size}; were they taken from another model?")
    model.flat_params[...] = backend.to_xp(weights, model.xp)


def get_lr(owner: str, model: Any) -> float:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "lr"):
        raise ValueError(f"{owner}: the model has no optimizer with an `lr`; compile it first")
    return float(optimizer.lr)


def set_lr(model: Any, lr: float) -> None:
    model.optimizer.lr = float(lr)
