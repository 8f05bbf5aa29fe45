"""im2col and col2im: a convolution's input windows as the columns of one matrix, and back.

With the batch held as CHWN (see `_windows`), K = C·kh·kw and M = H'·W'·N (every output
position of the whole batch), `im2col` turns the padded input into a (K, M) matrix whose column
m is the window output position m reads, so that a convolution is one product W(F, K)·cols.
`col2im` is its adjoint: it adds each column back onto the window it came from (where windows
overlap, their contributions add up), which is how the input gradient leaves the columns.

These two are the reference the rest is checked against, and the functions Conv2D's plain path
(the path CuPy runs) calls; the CPU override in `_conv_blocked` calls them on blocks of rows.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from gpunet.layers._windows import Pair, offsets, window


def im2col(a: Any, kernel: Pair, stride: Pair, ohw: Pair, xp: ModuleType,
           out: Any = None) -> Any:
    """Columns of the CHWN array `a` as a (C·kh·kw, H'·W'·N) matrix, rows ordered (C, kh, kw),
    columns (H', W', N). One copy from a read-only strided view (one kernel launch on CuPy).
    Written into `out` (a C-contiguous (K, M) array) when given."""
    c, n = a.shape[0], a.shape[3]
    k, m = c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n
    sc, sh, sw, sn = a.strides
    windows = _stride_tricks(xp).as_strided(
        a, shape=(c, *kernel, *ohw, n), strides=(sc, sh, sw, sh * stride[0], sw * stride[1], sn))
    cols = xp.empty((k, m), dtype=a.dtype) if out is None else out
    cols.reshape(c, *kernel, *ohw, n)[...] = windows
    return cols


def col2im(cols: Any, shape: tuple[int, ...], kernel: Pair, stride: Pair, ohw: Pair,
           xp: ModuleType) -> Any:
    """The adjoint of `im2col`: a CHWN array of `shape` (C, H, W, N), zero, with every column
    of the (K, M) matrix `cols` added onto the window it was taken from."""
    out = xp.zeros(shape, dtype=cols.dtype)
    add_windows(out, cols, kernel, stride, ohw)
    return out


def add_windows(out: Any, cols: Any, kernel: Pair, stride: Pair, ohw: Pair) -> None:
    """col2im into an existing CHWN array: out[window of column m] += column m, one strided
    whole-batch addition per window offset (i, j)."""
    blocks = cols.reshape(out.shape[0], *kernel, *ohw, out.shape[3])  # (C, kh, kw, H', W', N)
    for i, j in offsets(kernel):
        view = window(out, i, j, ohw, stride)
        view += blocks[:, i, j]  # in place on `out`, through the view


def _stride_tricks(xp: ModuleType) -> ModuleType:
    """`numpy.lib.stride_tricks` or `cupy.lib.stride_tricks`."""
    return importlib.import_module(f"{xp.__name__}.lib.stride_tricks")
