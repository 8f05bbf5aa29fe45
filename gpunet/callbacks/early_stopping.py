"""EarlyStopping: stop when a monitored metric stops improving (Keras 3 semantics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.callbacks.base import (
    Callback,
    Logs,
    check_mode,
    check_monitor,
    decode_float,
    direction,
    encode_float,
    monitor_value,
    restore,
    snapshot,
    weights_from_arrays,
    weights_to_arrays,
    worst,
)
from gpunet.checks import check_bool, check_float, check_int, fail, is_real


class EarlyStopping(Callback):
    """Stop training once `monitor` has not improved for `patience` epochs.

    As in keras/src/callbacks/early_stopping.py: an improvement is a change of more than
    `min_delta` (its sign is ignored) in the right direction ("auto" maximizes names containing
    "acc"); the wait counter restarts only on epochs that beat both the best so far and
    `baseline`; epochs before `start_from_epoch` are ignored; training never stops at epoch 0.
    With `restore_best_weights` the weights of the best epoch are kept as a device copy of
    `model.flat_params` and written back at train end, whether or not training stopped early.
    When it stops training it also sets `model.stop_reason` (a sentence for the history).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        name = "EarlyStopping"
        self.monitor = check_monitor(name, monitor)
        self.min_delta = abs(check_float(name, "min_delta", min_delta))
        self.patience = check_int(name, "patience", patience)
        self.verbose = check_int(name, "verbose", verbose)
        self.mode = check_mode(name, mode)
        if baseline is not None and not is_real(baseline):
            raise fail(name, "baseline", "None or a finite number", baseline)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = check_bool(name, "restore_best_weights",
                                               restore_best_weights)
        self.start_from_epoch = check_int(name, "start_from_epoch", start_from_epoch)
        self.direction = direction(self.monitor, self.mode)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = worst(self.direction)
        self.best_epoch = 0
        self.best_weights: Any = None

    def _is_improvement(self, value: float, reference: float) -> bool:
        if self.direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fresh_start():
            self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = monitor_value("Early stopping", self.monitor, logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = snapshot(self.model)  # the first monitored epoch is the best yet
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = snapshot(self.model)
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.model.stop_reason = (  # the trainer reports it in History.stop_reason
                f"EarlyStopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {self.best:.6g} at epoch {self.best_epoch + 1}); stopped after epoch "
                f"{epoch + 1}")

    def on_train_end(self, logs: Logs | None = None) -> None:
        super().on_train_end(logs)
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            restore(self.model, self.best_weights, "EarlyStopping")

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch,
                "best": encode_float(self.best), "best_epoch": self.best_epoch}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return weights_to_arrays(self.best_weights)

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = decode_float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.best_weights = weights_from_arrays(arrays, self.model)

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"mode={self.direction!r})")
