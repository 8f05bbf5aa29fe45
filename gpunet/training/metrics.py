"""The one metric of gpunet, used alike for training, validation and `evaluate`: the mean loss
and the accuracy over the batches seen, summed on the model's device."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def correct_count(out: Any, y: Any) -> Any:
    """How many rows of `out` pick the right class (a 0-d device array). `y`: class labels
    (N,), or one-hot / probability rows (N, K), whose argmax is the class."""
    truth = y if y.ndim == 1 else y.argmax(axis=1)
    return (out.argmax(axis=1) == truth).sum()


class Tally:
    """Running sums of loss·batch size and of correct predictions. Adding stays on the device
    (no host↔device synchronisation per batch); `mean_loss` and `logs` read it back."""

    def __init__(self, xp: ModuleType, accuracy: bool = True) -> None:
        self.loss_sum = xp.zeros((), dtype=np.float64)
        self.correct = xp.zeros((), dtype=np.int64)
        self.seen = 0
        self.accuracy = accuracy

    def add(self, out: Any, y: Any, loss: Any) -> None:
        """Count one batch: its outputs, targets and mean loss (a 0-d device array)."""
        n = len(y)
        self.loss_sum += loss * n
        if self.accuracy:
            self.correct += correct_count(out, y)
        self.seen += n

    def mean_loss(self) -> float:
        return float(self.loss_sum) / max(self.seen, 1)

    def logs(self) -> dict[str, float]:
        """{"loss": mean loss} plus {"accuracy": fraction correct} when counted."""
        logs = {"loss": self.mean_loss()}
        if self.accuracy:
            logs["accuracy"] = int(self.correct) / max(self.seen, 1)
        return logs
