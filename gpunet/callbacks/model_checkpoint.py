"""ModelCheckpoint: save the model (atomically) whenever the monitored metric improves."""

from __future__ import annotations

import os
from typing import Any

from gpunet.callbacks.base import (
    Callback,
    Logs,
    check_mode,
    check_monitor,
    decode_float,
    direction,
    encode_float,
    monitor_value,
    worst,
)
from gpunet.checks import check_bool, check_int, fail


class ModelCheckpoint(Callback):
    """Write `model.save(filepath)` at the end of each epoch that improves `monitor`.

    `filepath` may hold format fields: `{epoch}` is the 1-based epoch number (as in Keras, so
    "ckpt-{epoch:02d}.npz" names the first epoch's file "ckpt-01.npz") and any logs key may be
    used too, e.g. "{val_loss:.3f}". An improvement is strictly better than the best so far
    (NaN never is). With `save_best_only=False` every epoch is saved. `model.save` writes to a
    temporary file and renames it, so a crash never leaves a half-written checkpoint.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = True, verbose: int = 0) -> None:
        super().__init__()
        name = "ModelCheckpoint"
        if not isinstance(filepath, (str, os.PathLike)) or not os.fspath(filepath):
            raise fail(name, "filepath", "a non-empty path (str or os.PathLike)", filepath)
        self.filepath = os.fspath(filepath)
        self.monitor = check_monitor(name, monitor)
        self.mode = check_mode(name, mode)
        self.save_best_only = check_bool(name, "save_best_only", save_best_only)
        self.verbose = check_int(name, "verbose", verbose)
        self.direction = direction(self.monitor, self.mode)
        self._reset()

    def _reset(self) -> None:
        self.best = worst(self.direction)
        self.best_epoch: int | None = None
        self.last_saved: str | None = None

    def _is_improvement(self, value: float) -> bool:
        return value < self.best if self.direction == "min" else value > self.best

    def path_for(self, epoch: int, logs: Logs | None = None) -> str:
        """The file name for 0-based `epoch` (`{epoch}` is filled in 1-based)."""
        try:
            return self.filepath.format(**{**(logs or {}), "epoch": epoch + 1})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} could not be "
                             f"formatted ({type(exc).__name__}: {exc}); fields may be 'epoch' "
                             f"or a logs key: {sorted(logs or {})}") from exc

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fresh_start():
            self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if getattr(self.model, "nonfinite", None):  # diverged: the weights (perhaps restored
            return  # by TerminateOnNaN to untrained ones) must not be saved as best
        path = self.path_for(epoch, logs)
        if not self.save_best_only:
            self._save(path, epoch, "saving model")
            return
        current = monitor_value("ModelCheckpoint", self.monitor, logs)
        if current is None:
            return
        if self._is_improvement(current):
            note = (f"{self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving model")
            self.best, self.best_epoch = current, epoch
            self._save(path, epoch, note)
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")

    def _save(self, path: str, epoch: int, note: str) -> None:
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: {note} to {path}")
        self.model.save(path)
        self.last_saved = path

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"best": encode_float(self.best), "best_epoch": self.best_epoch,
                "last_saved": self.last_saved}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self.best = decode_float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.last_saved = state["last_saved"]

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.filepath!r}, monitor={self.monitor!r})"
