"""Optimizers (SGD, Adagrad, RMSprop, Adam) that update parameters in place with one fused kernel
per array, and learning-rate schedules (StepDecay, CosineDecay).

    opt = gn.optimizers.Adam(lr=1e-3)
    opt.step([model.flat_params], [model.flat_grads])
"""

from __future__ import annotations

from typing import Any

from gpunet.optimizers.base import Optimizer
from gpunet.optimizers.rules import SGD, Adagrad, Adam, RMSprop
from gpunet.optimizers.schedules import CosineDecay, Schedule, StepDecay

# name -> (class, the settings the name stands for); the one optimizer lookup of gpunet
NAMES: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "adagrad": (Adagrad, {}),
    "rmsprop": (RMSprop, {}),
    "adam": (Adam, {}),
}


def get(optimizer: Any, **kwargs: Any) -> Optimizer:
    """An Optimizer instance as is, or a new one from its name, built with the name's settings
    and `kwargs` (e.g. `get("momentum", lr=0.1)` is `SGD(momentum=0.9, lr=0.1)`)."""
    if isinstance(optimizer, Optimizer):
        if kwargs:
            raise ValueError(f"optimizer: settings {sorted(kwargs)} go with a name, not with the "
                             f"instance {optimizer!r}")
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in NAMES:
        cls, settings = NAMES[optimizer.lower()]
        return cls(**{**settings, **kwargs})
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
