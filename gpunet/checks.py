"""Argument checks, one vocabulary for the whole package: every refusal reads
"<owner>: <argument> must be <expected>, got <value>", a ValueError (TypeError for a wrong kind
of object where Python's convention says so). NumPy integers count as ints, bools never do."""

from __future__ import annotations

import math
import numbers
from typing import Any


def fail(owner: str, name: str, expected: str, value: Any) -> ValueError:
    """The error for argument `name` of `owner` (raise it)."""
    return ValueError(f"{owner}: {name} must be {expected}, got {value!r}")


def check(ok: bool, owner: str, name: str, expected: str, value: Any) -> None:
    """Raise `fail(...)` unless `ok`."""
    if not ok:
        raise fail(owner, name, expected, value)


def is_int(x: Any) -> bool:
    """An integer (NumPy integers included, bools excluded)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_real(x: Any) -> bool:
    """A finite real number (NumPy numbers included, bools excluded)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_int(owner: str, name: str, value: Any, minimum: int = 0) -> int:
    """`value` as a Python int, refused unless it is an integer >= `minimum`."""
    check(is_int(value) and value >= minimum, owner, name, f"an int >= {minimum}", value)
    return int(value)


def check_positive_int(owner: str, name: str, value: Any) -> int:
    """`value` as a Python int, refused unless it is an integer >= 1."""
    check(is_int(value) and value >= 1, owner, name, "a positive int", value)
    return int(value)


def check_float(owner: str, name: str, value: Any, minimum: float | None = None,
                below: float | None = None) -> float:
    """A finite real number, >= `minimum` and < `below` where given, as a Python float."""
    ok = is_real(value) and (minimum is None or value >= minimum) \
        and (below is None or value < below)
    if not ok:
        parts = ["a finite number"]
        if minimum is not None:
            parts.append(f">= {minimum}")
        if below is not None:
            parts.append(f"< {below}")
        raise fail(owner, name, " ".join(parts), value)
    return float(value)


def check_bool(owner: str, name: str, value: Any) -> bool:
    check(isinstance(value, bool), owner, name, "True or False", value)
    return value
