"""ProgressBar: a throttled tqdm bar per epoch on a terminal, one summary line per epoch."""

from __future__ import annotations

import sys
from typing import Any

from gpunet.callbacks.base import Callback, Logs


class ProgressBar(Callback):
    """verbose=0: silent. verbose>=1: a summary line per epoch; plus a bar of `steps` batches
    when stderr is a terminal. `fit` adds one, last, to its callbacks."""

    def __init__(self, verbose: int, epochs: int, steps: int) -> None:
        super().__init__()
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.bar_enabled = verbose >= 1 and sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._done = 0
        if self.bar_enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                             unit="batch", leave=False, mininterval=0.2, file=sys.stderr)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._bar is not None:
            self._bar.update(batch + 1 - self._done)
            if logs:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        self._done = batch + 1

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._close()
        if self.verbose >= 1:
            print(format_epoch(epoch, self.epochs, logs or {}), flush=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        super().on_train_end(logs)
        self._close()  # an interrupted epoch leaves its bar open

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(epoch: int, epochs: int, logs: Logs) -> str:
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    if "seconds" in logs:
        parts.append(f"{logs['seconds']:.2f}s")
    if "images_per_second" in logs:
        parts.append(f"{logs['images_per_second']:,.0f} img/s")
    return "  ".join(parts)
