"""Learning-rate schedules: callables epoch (0-based) -> lr. Give one as an optimizer's `lr`;
the trainer then calls `optimizer.on_epoch_begin(epoch)`, which sets `optimizer.lr`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gpunet.checks import check, is_int, is_real

Schedule = Callable[[int], float]


def cosine_lr(epoch: int, initial_lr: float, total_epochs: int, min_lr: float) -> float:
    """Half a cosine from `initial_lr` at epoch 0 to `min_lr` at `total_epochs`, flat after:
    min_lr + (initial_lr − min_lr)·(1 + cos(π·e/T))/2 with e = min(epoch, T). The one cosine
    formula of gpunet (the CosineDecay schedule and the CosineAnnealing callback use it)."""
    e = min(max(epoch, 0), total_epochs)
    return min_lr + (initial_lr - min_lr) * (1.0 + math.cos(math.pi * e / total_epochs)) / 2.0


def _check_epoch(owner: str, epoch: Any) -> int:
    check(is_int(epoch) and epoch >= 0, owner, "epoch", "an int >= 0", epoch)
    return int(epoch)


class StepDecay:
    """lr = initial_lr · gamma^(epoch // step_size), as torch.optim.lr_scheduler.StepLR."""

    def __init__(self, initial_lr: float, step_size: int, gamma: float = 0.1) -> None:
        check(is_real(initial_lr) and initial_lr > 0, "StepDecay", "initial_lr", "a number > 0",
              initial_lr)
        check(is_int(step_size) and step_size >= 1, "StepDecay", "step_size", "an int >= 1",
              step_size)
        check(is_real(gamma) and gamma > 0, "StepDecay", "gamma", "a number > 0", gamma)
        self.initial_lr, self.step_size, self.gamma = float(initial_lr), int(step_size), gamma

    def __call__(self, epoch: int) -> float:
        epoch = _check_epoch("StepDecay", epoch)
        return self.initial_lr * float(self.gamma) ** (epoch // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay({self.initial_lr!r}, step_size={self.step_size}, gamma={self.gamma!r})"


class CosineDecay:
    """Half a cosine from initial_lr at epoch 0 down to min_lr at epoch total_epochs, as
    torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_epochs, eta_min=min_lr).

    Past total_epochs it stays at min_lr (torch's schedule would climb back up again).
    """

    def __init__(self, initial_lr: float, total_epochs: int, min_lr: float = 0.0) -> None:
        check(is_real(initial_lr) and initial_lr > 0, "CosineDecay", "initial_lr",
              "a number > 0", initial_lr)
        check(is_int(total_epochs) and total_epochs >= 1, "CosineDecay", "total_epochs",
              "an int >= 1", total_epochs)
        check(is_real(min_lr) and 0 <= min_lr <= initial_lr, "CosineDecay", "min_lr",
              f"a number in [0, initial_lr={initial_lr}]", min_lr)
        self.initial_lr, self.total_epochs = float(initial_lr), int(total_epochs)
        self.min_lr = float(min_lr)

    def __call__(self, epoch: int) -> float:
        epoch = _check_epoch("CosineDecay", epoch)
        return cosine_lr(epoch, self.initial_lr, self.total_epochs, self.min_lr)

    def __repr__(self) -> str:
        return (f"CosineDecay({self.initial_lr!r}, total_epochs={self.total_epochs}, "
                f"min_lr={self.min_lr!r})")
