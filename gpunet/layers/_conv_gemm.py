"""Conv2D's three products (output, weight gradient, input gradient) arranged for the CPU cache
and OpenBLAS on NumPy, or one GEMM each on CuPy. Timings: one thread, the cnn at 64 images.

Two ways to run a layer on NumPy:
- few rows of columns (K = C·kh·kw ≤ FEW_ROWS, a first layer): the whole column matrix is kept
  from forward to backward and multiplied in blocks of CHUNK columns;
- otherwise the columns are never kept: forward makes and multiplies them a few output rows at
  a time, backward remakes each block (im2col of a block costs less than writing and re-reading
  the whole matrix) and uses it for the weight gradient and the input gradient at once.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from gpunet.layers._im2col import Pair, im2col, offsets, window

# OpenBLAS multiplies a matrix of very few rows of columns (a first layer's K + 1 = 26 for a
# 5×5 grey-scale convolution) about twice as fast in blocks of ~1,024 columns as in one call:
# 20×26 @ 26×36,864 took 1.04 ms whole and 0.46–0.52 ms in blocks of 512–1,024, the weight
# gradient 0.95 → 0.41 ms. From K = 51 up, blocks of columns gained nothing.
FEW_ROWS, CHUNK = 32, 1024

# Output rows are taken in blocks whose columns fill about this much memory (in cache). The
# cnn's second convolution (K = 500): forward 3.2 → 2.3 ms; inference at 512 images 35 → 25 ms;
# a whole training step with 2 workers 13.9 → 13.4 ms (median of 8 blocks of 20 steps; with
# 2 MB blocks no gain).
ROW_BLOCK_BYTES = 1 << 20


def by_rows(xp: ModuleType, k: int) -> bool:
    """Whether a layer with K = C·kh·kw runs a few output rows at a time (else keeps columns)."""
    return xp.__name__ == "numpy" and k > FEW_ROWS


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


def _row_blocks(oh: int, bytes_per_row: int) -> list[tuple[int, int]]:
    """(first output row, number of rows) of each block of about ROW_BLOCK_BYTES."""
    rows = max(1, min(oh, ROW_BLOCK_BYTES // bytes_per_row))
    return [(r0, min(rows, oh - r0)) for r0 in range(0, oh, rows)]


def _rows_in(a: Any, r0: int, r: int, kernel: Pair, stride: Pair) -> Any:
    """The input rows (a CHWN view) that output rows r0 … r0+r−1 read."""
    return a[:, r0 * stride[0]:(r0 + r - 1) * stride[0] + kernel[0]]


def conv_rows(a: Any, wb: Any, kernel: Pair, stride: Pair, ohw: Pair, xp: ModuleType) -> Any:
    """wb(F, K+1) @ im2col(a) as (F, H'·W'·N): a few output rows at a time when `by_rows`,
    else in one piece."""
    c, n = a.shape[0], a.shape[3]
    k, (oh, ow) = c * kernel[0] * kernel[1], ohw
    if not by_rows(xp, k):
        return weights_at_cols(wb, im2col(a, kernel, stride, ohw, xp), xp)
    y = xp.empty((wb.shape[0], oh * ow * n), dtype=a.dtype)
    for r0, r in _row_blocks(oh, (k + 1) * ow * n * a.itemsize):
        cols = im2col(_rows_in(a, r0, r, kernel, stride), kernel, stride, (r, ow), xp)
        xp.matmul(wb, cols, out=y[:, r0 * ow * n:(r0 + r) * ow * n])
    return y


def conv_rows_backward(a: Any, wt: Any, d2: Any, kernel: Pair, stride: Pair, ohw: Pair,
                       xp: ModuleType, input_grad: bool) -> tuple[Any, Any]:
    """For a `by_rows` layer with padded CHWN input `a`, weights wt(K, F) and d2(F, H'·W'·N):
    ([dW | db] as (K+1, F), dx as a padded CHWN array or None), a few output rows at a time."""
    c, n = a.shape[0], a.shape[3]
    (k, f), (oh, ow) = wt.shape, ohw
    g = xp.zeros((k + 1, f), dtype=d2.dtype)
    dx = xp.zeros(a.shape, dtype=d2.dtype) if input_grad else None
    blocks = _row_blocks(oh, (k + 1) * ow * n * a.itemsize)
    buf = xp.empty(k * blocks[0][1] * ow * n, dtype=d2.dtype)
    for r0, r in blocks:
        d = d2[:, r0 * ow * n:(r0 + r) * ow * n]
        g += im2col(_rows_in(a, r0, r, kernel, stride), kernel, stride, (r, ow), xp) @ d.T
        if dx is not None:
            dcols = buf[:k * r * ow * n].reshape(k, r * ow * n)
            xp.matmul(wt, d, out=dcols)
            _add_windows(dx, dcols.reshape(c, *kernel, r, ow, n), r0, kernel, stride)
    return g, dx


def _add_windows(out: Any, dcols: Any, r0: int, kernel: Pair, stride: Pair) -> None:
    """col2im of one block: add dcols (C, kh, kw, r, W', N) into the CHWN `out` at the
    windows of output rows r0 … r0+r−1."""
    part = out[:, r0 * stride[0]:]  # input rows from the first this block touches
    for i, j in offsets(kernel):
        view = window(part, i, j, dcols.shape[3:5], stride)
        view += dcols[:, i, j]  # in place on `out`, through the view


# Blocks of columns this size stay in the CPU cache between the GEMM that writes them and the
# col2im that reads them (layers that keep their columns). For the cnn's second convolution at
# batch 128 (a 500 × 8192 matrix) this took 5.4 ms instead of 8.3 ms with cold caches.
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
        _add_windows(out, cols.reshape(out.shape[0], *kernel, r, ow, n), r0, kernel, stride)
    return out
