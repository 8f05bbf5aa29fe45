"""Progress output: a throttled tqdm bar per epoch on a terminal, one summary line per epoch."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """verbose=0: silent. verbose>=1: a summary line per epoch; plus a bar when stderr is a tty."""

    def __init__(self, verbose: int, epochs: int) -> None:
        self.verbose, self.epochs = verbose, epochs
        self.bar_enabled = verbose >= 1 and sys.stderr.isatty()
        self._bar: Any = None

    def start_epoch(self, epoch: int, batches: int) -> None:
        if self.bar_enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=batches, desc=f"epoch {epoch + 1}/{self.epochs}",
                             unit="batch", leave=False, mininterval=0.2, file=sys.stderr)

    def update(self, batches: int, logs: dict[str, float] | None = None) -> None:
        if self._bar is not None:
            self._bar.update(batches)
            if logs:
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose >= 1:
            print(format_epoch(epoch, self.epochs, logs), flush=True)


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    if "seconds" in logs:
        parts.append(f"{logs['seconds']:.2f}s")
    if "images_per_second" in logs:
        parts.append(f"{logs['images_per_second']:,.0f} img/s")
    return "  ".join(parts)
