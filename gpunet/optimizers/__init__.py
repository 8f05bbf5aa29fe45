"""Optimizers (SGD, Adagrad, RMSprop, Adam) that update parameters in place with one fused kernel
per array, and learning-rate schedules (StepDecay, CosineDecay).

    opt = gn.optimizers.Adam(lr=1e-3)
    opt.step([model.flat_params], [model.flat_grads])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpunet.optimizers._checks import Schedule
from gpunet.optimizers.base import Optimizer
from gpunet.optimizers.rules import SGD, Adagrad, Adam, RMSprop
from gpunet.optimizers.schedules import CosineDecay, StepDecay

NAMES: dict[str, Callable[[], Optimizer]] = {
    "sgd": SGD,
    "momentum": lambda: SGD(momentum=0.9),
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def get(optimizer: Any) -> Optimizer:
    """An Optimizer instance as is, or a new one (default settings) from its name."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in NAMES:
        return NAMES[optimizer.lower()]()
    raise ValueError(f"optimizer: expected an Optimizer instance or one of {sorted(NAMES)}, "
                     f"got {optimizer!r}")


__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "CosineDecay",
    "NAMES",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepDecay",
    "get",
]
