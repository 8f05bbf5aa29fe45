"""Conv2D's CPU override: the same three products as the reference path in `conv.py`
(y = W·cols + b, ∂C/∂W = δ·colsᵀ and ∂C/∂b = Σδ, dx = col2im(Wᵀδ)), arranged for the CPU cache
and OpenBLAS. Used on NumPy only (CuPy runs the reference path); tests/layers/test_conv.py
checks it against the reference. Timings: one thread, the cnn of `gpunet.reference_models`
at 64 images.

The bias rides in the GEMMs here: the columns get a last row of ones, the weights a last column
b, so y = [W | b]·[cols; 1] and [∂C/∂W | ∂C/∂b] come out of one product.

Two ways to run a layer, by K = C·kh·kw:
- few rows (K ≤ FEW_ROWS, a first layer): the (K+1, M) columns are kept from forward to
  backward and multiplied in blocks of CHUNK columns;
- otherwise the columns are never kept: forward makes and multiplies them a few output rows at
  a time, backward remakes each block (im2col of a block costs less than writing and re-reading
  the whole matrix) and uses it for the weight gradient and the input gradient at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.layers._im2col import add_windows, im2col
from gpunet.layers._windows import Pair

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

# Blocks of columns this size stay in the CPU cache between the GEMM that writes them and the
# col2im that reads them (layers that keep their columns). For the cnn's second convolution at
# batch 128 (a 500 × 8192 matrix) this took 5.4 ms instead of 8.3 ms with cold caches.
BLOCK_BYTES = 4 << 20


def forward(layer: Any, a: Any, ohw: Pair, training: bool) -> Any:
    """y as (F, H'·W'·N) for the padded CHWN input `a`; keeps in `layer._kept` what backward
    needs when training: the columns (few rows) or `a` itself (the columns are remade)."""
    w = layer.params["W"]
    f = w.shape[0]
    wb = np.concatenate([w.reshape(f, -1), layer.params["b"].reshape(-1, 1)], axis=1)
    if wb.shape[1] - 1 > FEW_ROWS:
        layer._kept = a if training else None
        return _rows_forward(a, wb, layer.kernel, layer.stride, ohw)
    cols = _cols_and_ones(a, layer.kernel, layer.stride, ohw)
    layer._kept = cols if training else None
    return _chunked_product(wb, cols)


def backward(layer: Any, d: Any, a_shape: tuple[int, ...], ohw: Pair) -> tuple[Any, Any, Any]:
    """(∂C/∂W as (F, K), ∂C/∂b, dx as a padded CHWN array or None) from δ = d(F, H'·W'·N)."""
    w = layer.params["W"]
    wt = w.reshape(w.shape[0], -1).T  # (K, F)
    if wt.shape[0] > FEW_ROWS:  # columns remade a few output rows at a time
        g, dx = _rows_backward(layer._kept, wt, d, layer.kernel, layer.stride, ohw,
                               layer.input_grad)
    else:
        g = _chunked_grad(layer._kept, d)
        dx = _gemm_col2im(wt, d, a_shape, layer.kernel, layer.stride, ohw) \
            if layer.input_grad else None
    return g[:-1].T, g[-1], dx  # g is (K+1, F): its last row, from the row of ones, is ∂C/∂b


def _cols_and_ones(a: Any, kernel: Pair, stride: Pair, ohw: Pair) -> Any:
    """im2col(a) with one last row of ones, as a (K+1, M) matrix."""
    k = a.shape[0] * kernel[0] * kernel[1]
    cols = np.empty((k + 1, ohw[0] * ohw[1] * a.shape[3]), dtype=a.dtype)
    im2col(a, kernel, stride, ohw, np, out=cols[:k])
    cols[k] = 1
    return cols


def _chunks(a: Any, whole: int) -> Any:
    """(R, M) → its first `whole` columns as a (whole/CHUNK, R, CHUNK) view."""
    return a[:, :whole].reshape(a.shape[0], -1, CHUNK).transpose(1, 0, 2)


def _chunked_product(w: Any, cols: Any) -> Any:
    """w(F, K) @ cols(K, M), in blocks of CHUNK columns when there are enough of them."""
    m = cols.shape[1]
    if m < 2 * CHUNK:
        return w @ cols
    out = np.empty((w.shape[0], m), dtype=cols.dtype)
    whole = m - m % CHUNK
    np.matmul(w, _chunks(cols, whole), out=_chunks(out, whole))
    if whole < m:
        np.matmul(w, cols[:, whole:], out=out[:, whole:])
    return out


def _chunked_grad(cols: Any, d: Any) -> Any:
    """cols(K, M) @ d(F, M)ᵀ as (K, F), a sum over blocks of CHUNK columns when there are
    enough of them."""
    m = cols.shape[1]
    if m < 2 * CHUNK:
        return cols @ d.T  # rather than (d @ colsᵀ)ᵀ: the same, faster in OpenBLAS here
    whole = m - m % CHUNK
    g = (_chunks(cols, whole) @ _chunks(d, whole).transpose(0, 2, 1)).sum(axis=0)
    if whole < m:
        g += cols[:, whole:] @ d[:, whole:].T
    return g


def _row_blocks(oh: int, bytes_per_row: int) -> list[tuple[int, int]]:
    """(first output row, number of rows) of each block of about ROW_BLOCK_BYTES."""
    rows = max(1, min(oh, ROW_BLOCK_BYTES // bytes_per_row))
    return [(r0, min(rows, oh - r0)) for r0 in range(0, oh, rows)]


def _rows_in(a: Any, r0: int, r: int, kernel: Pair, stride: Pair) -> Any:
    """The input rows (a CHWN view) that output rows r0 … r0+r−1 read."""
    return a[:, r0 * stride[0]:(r0 + r - 1) * stride[0] + kernel[0]]


def _rows_forward(a: Any, wb: Any, kernel: Pair, stride: Pair, ohw: Pair) -> Any:
    """wb(F, K+1) @ [im2col(a); 1] as (F, H'·W'·N), a few output rows at a time."""
    n, (oh, ow) = a.shape[3], ohw
    k = wb.shape[1] - 1
    y = np.empty((wb.shape[0], oh * ow * n), dtype=a.dtype)
    for r0, r in _row_blocks(oh, (k + 1) * ow * n * a.itemsize):
        cols = _cols_and_ones(_rows_in(a, r0, r, kernel, stride), kernel, stride, (r, ow))
        np.matmul(wb, cols, out=y[:, r0 * ow * n:(r0 + r) * ow * n])
    return y


def _rows_backward(a: Any, wt: Any, d: Any, kernel: Pair, stride: Pair, ohw: Pair,
                   input_grad: bool) -> tuple[Any, Any]:
    """For the padded CHWN input `a`, weights wt(K, F) and δ = d(F, H'·W'·N):
    ([∂C/∂W | ∂C/∂b] as (K+1, F), dx as a padded CHWN array or None), a few output rows at a
    time."""
    n = a.shape[3]
    (k, f), (oh, ow) = wt.shape, ohw
    g = np.zeros((k + 1, f), dtype=d.dtype)
    dx = np.zeros(a.shape, dtype=d.dtype) if input_grad else None
    blocks = _row_blocks(oh, (k + 1) * ow * n * a.itemsize)
    buf = np.empty(k * blocks[0][1] * ow * n, dtype=d.dtype)
    for r0, r in blocks:
        block = d[:, r0 * ow * n:(r0 + r) * ow * n]
        cols = _cols_and_ones(_rows_in(a, r0, r, kernel, stride), kernel, stride, (r, ow))
        g += cols @ block.T
        if dx is not None:
            dcols = buf[:k * r * ow * n].reshape(k, r * ow * n)
            np.matmul(wt, block, out=dcols)
            add_windows(dx[:, r0 * stride[0]:], dcols, kernel, stride, (r, ow))
    return g, dx


def _gemm_col2im(wt: Any, d: Any, shape: tuple[int, ...], kernel: Pair, stride: Pair,
                 ohw: Pair) -> Any:
    """col2im(wt(K, F) @ d(F, H'·W'·N)) as a CHWN array of `shape`, the product formed a few
    output rows at a time and each block summed into the result while still in the cache."""
    k, (oh, ow) = wt.shape[0], ohw
    n = d.shape[1] // (oh * ow)
    rows = max(1, min(oh, BLOCK_BYTES // (k * ow * n * d.itemsize)))
    out = np.zeros(shape, dtype=d.dtype)
    block = np.empty(k * rows * ow * n, dtype=d.dtype)
    for r0 in range(0, oh, rows):
        r = min(rows, oh - r0)
        cols = block[:k * r * ow * n].reshape(k, r * ow * n)
        np.matmul(wt, d[:, r0 * ow * n:(r0 + r) * ow * n], out=cols)
        add_windows(out[:, r0 * stride[0]:], cols, kernel, stride, (r, ow))
    return out
