"""History: the per-epoch logs of a `fit`, kept by a callback that `fit` always adds (as in
Keras, `fit` returns it and sets `model.history`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.callbacks.base import Callback, Logs


class History(Callback):
    """`history[key]` lists the value of each epoch's logs key (loss, accuracy, val_loss,
    val_accuracy, lr, seconds, images_per_second); `epoch` the 0-based epochs run;
    `stop_reason` why training ended early ("" when every epoch ran). It is part of the resumable
    state, so a resumed run's History holds the epochs before the interruption too."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stop_reason = ""

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fresh_start():
            self.history, self.epoch = {}, []
        self.stop_reason = ""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def on_train_end(self, logs: Logs | None = None) -> None:
        super().on_train_end(logs)
        self.stop_reason = getattr(self.model, "stop_reason", "") or ""

    # -- resumable state: the values as float64 arrays (exact, and NaN-safe) -----------------
    def get_state(self) -> dict[str, Any]:
        return {"keys": list(self.history), "epoch": list(self.epoch)}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {key: np.asarray(values, dtype=np.float64) for key, values in self.history.items()}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        arrays = arrays or {}
        self.history = {key: [float(v) for v in np.asarray(arrays[key])] for key in state["keys"]}
        self.epoch = [int(e) for e in state["epoch"]]

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)})"
