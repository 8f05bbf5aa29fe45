"""TerminateOnNaN: stop at the first non-finite loss and put back the last good weights."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from gpunet.callbacks.base import (
    Callback,
    Logs,
    decode_float,
    encode_float,
    restore,
    snapshot,
    weights_from_arrays,
    weights_to_arrays,
)
from gpunet.checks import check_bool


class TerminateOnNaN(Callback):
    """Stop training when a logged loss (batch "loss", or epoch "loss"/"val_loss") is NaN/inf.

    Why restore: once a loss is NaN the weights usually are too, so keeping them would end the
    run with a useless model. The callback keeps a device copy of the weights from the best
    finite epoch end (lowest "val_loss" when logged, else lowest "loss"; before the first epoch
    ends, the initial weights) and writes it back when it terminates and again at train end (in
    case the trainer finished the batch it was in). `.message` says what happened, naming the
    epoch and batch; it is also issued as a RuntimeWarning and set as `model.stop_reason`.
    `restore_best_weights=False` skips the copy.
    """

    handles_nonfinite = True

    def __init__(self, restore_best_weights: bool = True) -> None:
        super().__init__()
        self.restore_best_weights = check_bool("TerminateOnNaN", "restore_best_weights",
                                               restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self.message: str | None = None
        self.terminated = False
        self.epoch: int | None = None  # where the bad loss was seen (0-based)
        self.batch: int | None = None
        self.best: float | None = None
        self.best_key: str | None = None
        self.best_epoch: int | None = None  # None: the weights from before training
        self.best_weights: Any = None
        self._current_epoch = 0
        self._last_batch: int | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fresh_start():
            self._reset()
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = snapshot(self.model)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._current_epoch = epoch
        self._last_batch = None

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._last_batch = batch
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._terminate("loss", float(loss), self._current_epoch, batch)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(float(value)):
                self._terminate(key, float(value), epoch, self._last_batch)
                return
        if self.terminated:
            return
        key = "val_loss" if logs.get("val_loss") is not None else "loss"
        if logs.get(key) is None:
            return
        score = float(logs[key])
        if self.best is None or key != self.best_key or score < self.best:
            self.best, self.best_key, self.best_epoch = score, key, epoch
            if self.restore_best_weights:
                self.best_weights = snapshot(self.model)

    def on_train_end(self, logs: Logs | None = None) -> None:
        super().on_train_end(logs)
        if self.terminated and self.restore_best_weights and self.best_weights is not None:
            restore(self.model, self.best_weights, "TerminateOnNaN")

    def _terminate(self, key: str, value: float, epoch: int, batch: int | None) -> None:
        if self.terminated:
            return
        self.terminated, self.epoch, self.batch = True, epoch, batch
        self.model.stop_training = True
        where = f"epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
        index = f"epoch={epoch}" + ("" if batch is None else f", batch={batch}")
        msg = f"TerminateOnNaN: {key} is {value} at {where} (0-based {index}); stopped training"
        if self.restore_best_weights and self.best_weights is not None:
            restore(self.model, self.best_weights, "TerminateOnNaN")
            if self.best_epoch is None:
                msg += "; restored the weights from before training"
            else:
                msg += (f"; restored the weights from the end of epoch {self.best_epoch + 1} "
                        f"({self.best_key}={self.best:.6g})")
        self.message = msg + "."
        self.model.stop_reason = self.message
        warnings.warn(self.message, RuntimeWarning, stacklevel=3)

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"best": encode_float(self.best), "best_key": self.best_key,
                "best_epoch": self.best_epoch}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return weights_to_arrays(self.best_weights)

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self._reset()
        self.best = decode_float(state["best"])
        self.best_key = state["best_key"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = weights_from_arrays(arrays, self.model)
