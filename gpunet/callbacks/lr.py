"""Learning-rate callbacks: ReduceLROnPlateau, LearningRateScheduler and CosineAnnealing.

All of them read and write `model.optimizer.lr` (a float).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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
    get_lr,
    monitor_value,
    set_lr,
    worst,
)
from gpunet.checks import check_float, check_int, fail, is_real
from gpunet.optimizers.schedules import cosine_lr


class ReduceLROnPlateau(Callback):
    """Multiply the lr by `factor` after `patience` epochs without improvement (Keras rules).

    An improvement beats the best by more than `min_delta`. After a reduction the next
    `cooldown` epochs reset the wait counter (the last of them already counts again, as in
    Keras). The lr never goes below `min_lr`, and is left alone once it is there (compared in
    float32, as Keras does).
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, verbose: int = 0) -> None:
        super().__init__()
        name = "ReduceLROnPlateau"
        self.monitor = check_monitor(name, monitor)
        self.factor = check_float(name, "factor", factor, below=1.0)
        if self.factor <= 0:  # factor >= 1 never reduces; Keras rejects it as well
            raise fail(name, "factor", "a finite number > 0 and < 1.0", factor)
        self.patience = check_int(name, "patience", patience)
        self.mode = check_mode(name, mode)
        self.min_delta = check_float(name, "min_delta", min_delta, minimum=0.0)
        self.cooldown = check_int(name, "cooldown", cooldown)
        self.min_lr = check_float(name, "min_lr", min_lr, minimum=0.0)
        self.verbose = check_int(name, "verbose", verbose)
        self.direction = direction(self.monitor, self.mode)
        self._reset()

    def _reset(self) -> None:
        self.best = worst(self.direction)
        self.wait = 0
        self.cooldown_counter = 0

    def _is_improvement(self, value: float) -> bool:
        if self.direction == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fresh_start():
            self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = monitor_value("Learning rate reduction", self.monitor, logs)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = get_lr("ReduceLROnPlateau", self.model)
                if np.float32(old_lr) > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    set_lr(self.model, new_lr)
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"best": encode_float(self.best), "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self.best = decode_float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class LearningRateScheduler(Callback):
    """Set the lr at each epoch begin to `schedule(epoch, lr)` or `schedule(epoch)`.

    `epoch` is 0-based; `lr` is the optimizer's current lr. Which form is used is decided once,
    from the function's signature (a schedule accepting two positional arguments gets both),
    so a TypeError raised inside the schedule is never mistaken for the other form.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise fail("LearningRateScheduler", "schedule",
                       "a callable schedule(epoch, lr) or schedule(epoch)", schedule)
        self.schedule = schedule
        self.verbose = check_int("LearningRateScheduler", "verbose", verbose)
        self._two_args = _accepts_two(schedule)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._two_args:
            lr = self.schedule(epoch, get_lr("LearningRateScheduler", self.model))
        else:
            lr = self.schedule(epoch)
        if not is_real(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) must return a finite "
                             f"float >= 0, got {lr!r}")
        set_lr(self.model, float(lr))
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")


def _accepts_two(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: use the Keras form
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


class CosineAnnealing(Callback):
    """Cosine lr schedule: lr_e = min_lr + (initial_lr - min_lr) * (1 + cos(pi e / T)) / 2.

    `e` is the 0-based epoch and T = `total_epochs`; from epoch T on the lr stays at `min_lr`.
    `initial_lr` defaults to the optimizer's lr at train begin; it is part of the state so that
    a resumed run continues the same curve rather than restarting from the annealed lr.
    """

    def __init__(self, total_epochs: int, min_lr: float = 0.0,
                 initial_lr: float | None = None) -> None:
        super().__init__()
        name = "CosineAnnealing"
        self.total_epochs = check_int(name, "total_epochs", total_epochs, minimum=1)
        self.min_lr = check_float(name, "min_lr", min_lr, minimum=0.0)
        if initial_lr is not None:
            initial_lr = check_float(name, "initial_lr", initial_lr, minimum=self.min_lr)
        self.initial_lr_arg = initial_lr
        self.initial_lr = initial_lr

    def lr_at(self, epoch: int) -> float:
        """The lr for 0-based `epoch` (needs `initial_lr`, known from train begin)."""
        if self.initial_lr is None:
            raise ValueError("CosineAnnealing: initial_lr is not known before train begin")
        return cosine_lr(epoch, self.initial_lr, self.total_epochs, self.min_lr)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not self._fresh_start():
            return
        self.initial_lr = self.initial_lr_arg
        if self.initial_lr is None:
            lr = get_lr("CosineAnnealing", self.model)
            if lr < self.min_lr:
                raise fail("CosineAnnealing", "the optimizer's lr",
                           f">= min_lr ({self.min_lr})", lr)
            self.initial_lr = lr

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        set_lr(self.model, self.lr_at(epoch))

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"initial_lr": self.initial_lr}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self.initial_lr = state["initial_lr"]
