"""Window helpers shared by the convolution and pooling layers (NumPy and CuPy alike).

Inside these layers an image batch is held as a (C, H, W, N) array, the batch innermost: every
window slice is then made of runs of N contiguous numbers, which keeps im2col, col2im and
pooling copies cheap. The public API stays NCHW: `to_nchw` returns an NCHW *view* of CHWN
memory and `to_chwn` copies only when the memory is not already CHWN, so a chain of
conv/activation/pool layers passes its activations on without copying.
"""

from __future__ import annotations

import importlib
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


def im2col(a: Any, kernel: Pair, stride: Pair, ohw: Pair, xp: ModuleType) -> Any:
    """Columns of the CHWN array `a` as a (C·kh·kw + 1, H'·W'·N) matrix, rows ordered
    (C, kh, kw), then one last row of ones that carries the bias through the GEMMs.

    One copy from a read-only strided view (one kernel launch on CuPy)."""
    c, n = a.shape[0], a.shape[3]
    k, m = c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n
    sc, sh, sw, sn = a.strides
    windows = _stride_tricks(xp).as_strided(
        a, shape=(c, *kernel, *ohw, n), strides=(sc, sh, sw, sh * stride[0], sw * stride[1], sn))
    cols = xp.empty((k + 1, m), dtype=a.dtype)
    cols[:k].reshape(c, *kernel, *ohw, n)[...] = windows
    cols[k] = 1
    return cols


# Inference keeps no columns, so they can be made a few output rows at a time and multiplied
# while still in the CPU cache: conv2 of the cnn (K = 501) at 512 images per thread took 25 ms
# instead of 35 ms, at 64 images 2.3 instead of 3.2 ms (one thread). Not for K <= FEW_ROWS,
# where the blocked GEMMs below do better.
INFER_BLOCK_BYTES = 1 << 20


def conv_rows(a: Any, wb: Any, kernel: Pair, stride: Pair, ohw: Pair, xp: ModuleType) -> Any:
    """wb(F, K+1) @ im2col(a) as (F, H'·W'·N), the columns made a few output rows at a time
    (NumPy, K > FEW_ROWS); otherwise the same product in one piece."""
    c, n = a.shape[0], a.shape[3]
    k, (oh, ow) = c * kernel[0] * kernel[1], ohw
    if xp.__name__ != "numpy" or k <= FEW_ROWS:
        return weights_at_cols(wb, im2col(a, kernel, stride, ohw, xp), xp)
    rows = max(1, min(oh, INFER_BLOCK_BYTES // ((k + 1) * ow * n * a.itemsize)))
    y = xp.empty((wb.shape[0], oh * ow * n), dtype=a.dtype)
    for r0 in range(0, oh, rows):
        r = min(rows, oh - r0)
        part = a[:, r0 * stride[0]:(r0 + r - 1) * stride[0] + kernel[0]]
        xp.matmul(wb, im2col(part, kernel, stride, (r, ow), xp),
                  out=y[:, r0 * ow * n:(r0 + r) * ow * n])
    return y


def _stride_tricks(xp: ModuleType) -> ModuleType:
    """`numpy.lib.stride_tricks` or `cupy.lib.stride_tricks`."""
    return importlib.import_module(f"{xp.__name__}.lib.stride_tricks")


# OpenBLAS multiplies a matrix of very few rows of columns (a first layer's K = C·kh·kw + 1:
# 26 for a 5×5 grey-scale convolution) about twice as fast in blocks of ~1,024 columns as in
# one call: 20×26 @ 26×36,864 took 1.04 ms whole and 0.46–0.52 ms in blocks of 512–1,024, and
# the weight gradient 0.95 → 0.41 ms (one thread). From K = 51 up, blocks gained nothing.
FEW_ROWS, CHUNK = 32, 1024


def _chunks(a: Any, whole: int) -> Any:
    """(R, M) → its first `whole` columns as a (whole/CHUNK, R, CHUNK) view."""
    return a[:, :whole].reshape(a.shape[0], -1, CHUNK).transpose(1, 0, 2)


def weights_at_cols(w: Any, cols: Any, xp: ModuleType) -> Any:
    """w(F, K) @ cols(K, M), in blocks of columns when K is small (on NumPy)."""
    k, m = cols.shape
    if xp.__name__ != "numpy" or k > FEW_ROWS or m < 2 * CHUNK:
        return w @ cols
    out = xp.empty((w.shape[0], m), dtype=cols.dtype)
    whole = m - m % CHUNK
    xp.matmul(w, _chunks(cols, whole), out=_chunks(out, whole))
    if whole < m:
        xp.matmul(w, cols[:, whole:], out=out[:, whole:])
    return out


def cols_at_grad(cols: Any, d2: Any, xp: ModuleType) -> Any:
    """cols(K, M) @ d2(F, M)ᵀ, a (K, F) sum over blocks of columns when K is small (NumPy)."""
    k, m = cols.shape
    if xp.__name__ != "numpy" or k > FEW_ROWS or m < 2 * CHUNK:
        return cols @ d2.T  # rather than (d2 @ colsᵀ)ᵀ: the same, faster in OpenBLAS here
    whole = m - m % CHUNK
    g = (_chunks(cols, whole) @ _chunks(d2, whole).transpose(0, 2, 1)).sum(axis=0)
    if whole < m:
        g += cols[:, whole:] @ d2[:, whole:].T
    return g


# Blocks of columns this size stay in the CPU cache between the GEMM that writes them and the
# col2im that reads them. For the cnn's second convolution at batch 128 (a 500 × 8192 matrix)
# this took 5.4 ms instead of 8.3 ms with cold caches, and about 5% off that layer's backward
# inside a training step.
BLOCK_BYTES = 4 << 20


def gemm_col2im(wt: Any, d2: Any, hw: Pair, kernel: Pair, stride: Pair, ohw: Pair,
                xp: ModuleType) -> Any:
    """col2im(wt @ d2) as a (C, H, W, N) array: the adjoint of im2col applied to the columns
    wt(K, F) @ d2(F, H'·W'·N), K ordered (C, kh, kw). On NumPy the product is formed a few
    output rows at a time, each block summed into the result while still in the CPU cache;
    on CuPy in one GEMM."""
    k, (oh, ow) = wt.shape[0], ohw
    n = d2.shape[1] // (oh * ow)
    rows = oh if xp.__name__ != "numpy" else \
        max(1, min(oh, BLOCK_BYTES // (k * ow * n * d2.itemsize)))
    out = xp.zeros((k // (kernel[0] * kernel[1]), *hw, n), dtype=d2.dtype)
    block = xp.empty(k * rows * ow * n, dtype=d2.dtype)
    for r0 in range(0, oh, rows):
        r = min(rows, oh - r0)
        cols = block[:k * r * ow * n].reshape(k, r * ow * n)
        xp.matmul(wt, d2[:, r0 * ow * n:(r0 + r) * ow * n], out=cols)
        cols = cols.reshape(out.shape[0], *kernel, r, ow, n)
        part = out[:, r0 * stride[0]:]  # input rows from the first this block touches
        for i, j in offsets(kernel):
            view = window(part, i, j, (r, ow), stride)
            view += cols[:, i, j]  # in place on `out`, through the view
    return out
