"""Sliding-window helpers shared by the convolution and pooling layers (NumPy and CuPy alike):
argument checks, output sizes, the CHWN layout, strided window views and zero padding.

Inside these layers an image batch is held as a (C, H, W, N) array, the batch innermost: every
window slice is then made of runs of N contiguous numbers, which keeps im2col, col2im and
pooling copies cheap. The public API stays NCHW: `to_nchw` returns an NCHW *view* of CHWN
memory and `to_chwn` copies only when the memory is not already CHWN, so a chain of
conv/activation/pool layers passes its activations on without copying.
"""

from __future__ import annotations

from itertools import product
from numbers import Integral
from types import ModuleType
from typing import Any

Pair = tuple[int, int]


def pair(value: Any, arg: str, owner: str, minimum: int) -> Pair:
    """Normalise an int or an (h, w) pair of ints >= `minimum`."""
    items = list(value) if isinstance(value, (tuple, list)) else [value, value]
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, Integral) or v < minimum
                              for v in items):
        raise ValueError(f"{owner}: {arg} must be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return int(items[0]), int(items[1])


def config(value: Pair) -> int | list[int]:
    """A pair as saved in get_config: one int when square, else a JSON list."""
    return value[0] if value[0] == value[1] else list(value)


def out_hw(owner: Any, hw: Pair, window: Pair, stride: Pair, padding: Pair, arg: str,
           shape: tuple[int, ...]) -> Pair:
    """Output (H', W') of sliding `window`; ValueError naming `arg` when it does not fit."""
    hp, wp = hw[0] + 2 * padding[0], hw[1] + 2 * padding[1]
    if window[0] > hp or window[1] > wp:
        padded = f"padded to ({hp}, {wp}) " if any(padding) else ""
        raise ValueError(f"{owner!r}: {arg} {window} is larger than the input "
                         f"{padded}of shape {tuple(shape)}")
    return (hp - window[0]) // stride[0] + 1, (wp - window[1]) // stride[1] + 1


def offsets(window: Pair) -> list[Pair]:
    """The (i, j) offsets of a window, in row-major order."""
    return list(product(range(window[0]), range(window[1])))


def to_chwn(a: Any, xp: ModuleType, dtype: Any = None) -> Any:
    """An NCHW array as contiguous CHWN (free when the memory already is CHWN)."""
    out = xp.ascontiguousarray(a.transpose(1, 2, 3, 0))
    return out if dtype is None else out.astype(dtype, copy=False)


def to_nchw(a: Any) -> Any:
    """The NCHW view of a CHWN array."""
    return a.transpose(3, 0, 1, 2)


def window(a: Any, i: int, j: int, ohw: Pair, stride: Pair) -> Any:
    """View of the CHWN array `a` at window offset (i, j): shape (C, H', W', N)."""
    return a[:, i:i + stride[0] * (ohw[0] - 1) + 1:stride[0],
             j:j + stride[1] * (ohw[1] - 1) + 1:stride[1], :]


def pad(a: Any, padding: Pair, xp: ModuleType) -> Any:
    """Zero-pad the H and W axes of a CHWN array (no copy without padding)."""
    ph, pw = padding
    if not (ph or pw):
        return a
    c, h, w, n = a.shape
    out = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=a.dtype)
    out[:, ph:ph + h, pw:pw + w, :] = a
    return out


def unpad(a: Any, padding: Pair) -> Any:
    """View of a padded CHWN array without its border."""
    ph, pw = padding
    return a[:, ph:a.shape[1] - ph, pw:a.shape[2] - pw, :]
