"""Argument checks shared by optimizers and schedules: one message shape everywhere,
"<Owner>: <arg> must be <expected>, got <value>"."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

Schedule = Callable[[int], float]


def check(ok: bool, owner: str, arg: str, expected: str, value: Any) -> None:
    """Raise ValueError naming who complains, the argument, what was expected and what came."""
    if not ok:
        raise ValueError(f"{owner}: {arg} must be {expected}, got {value!r}")


def is_real(x: Any) -> bool:
    """A finite real number (bools excluded)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: Any) -> bool:
    """An integer (NumPy integers included, bools excluded)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)
