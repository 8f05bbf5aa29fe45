"""One-launch im2col and col2im for CuPy (RawKernels), behind a switch until a GPU measures them.

Same layout and meaning as `gpunet.layers._im2col.im2col` / `col2im`: the columns are a
(C·kh·kw, H'·W'·N) matrix, rows ordered (C, kh, kw), columns ordered (H', W', N). Conv2D's
reference path (the one CuPy runs) calls these instead of those when the switch is on:
- `im2col` is one launch over the columns; it reads any strided (C, H, W, N) view and can pad in
  the kernel (`padding`; Conv2D passes its already padded input with padding 0);
- `col2im` writes the input gradient in one launch, each input element summing its own kh·kw
  window entries, instead of a zeroed buffer and kh·kw strided adds (25 launches for 5×5).

Switch: `GPUNET_CONV_KERNELS=1` in the environment (read at each call) or `ENABLED = True`
here. Off by default: nothing here has been timed on a GPU yet.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gpunet.backend import is_gpu_array
from gpunet.kernels import _raw

ENABLED: bool | None = None  # None: follow GPUNET_CONV_KERNELS

_IM2COL_PARAMS = ("const T* a, T* cols, int c_n, int h, int w, int n, int sc, int sh, int sw, "
                  "int sn, int kh, int kw, int st_h, int st_w, int ph, int pw, int oh, int ow")
_IM2COL = """\
    const int m = oh * ow * n, total = c_n * kh * kw * m;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        const int r = i / m, col = i - r * m;
        const int c = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
        const int b = col % n, x = (col / n) % ow, y = col / (n * ow);
        const int hi = y * st_h + ki - ph, wi = x * st_w + kj - pw;
        cols[i] = (hi >= 0 && hi < h && wi >= 0 && wi < w)
            ? a[c * sc + hi * sh + wi * sw + b * sn] : (T)0;
    }"""

_COL2IM_PARAMS = ("const T* dcols, T* dx, int c_n, int h, int w, int n, int sc, int sh, int sw, "
                  "int sn, int kh, int kw, int st_h, int st_w, int ph, int pw, int oh, int ow")
_COL2IM = """\
    const int m = oh * ow * n, total = c_n * h * w * n;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
        const int b = i % n, wo = (i / n) % w, ho = (i / (n * w)) % h, c = i / (n * w * h);
        const int hp = ho + ph, wp = wo + pw;  /* in padded coordinates */
        T sum = (T)0;
        for (int ki = 0; ki < kh && ki <= hp; ++ki) {
            const int yy = hp - ki;
            if (yy % st_h != 0 || yy / st_h >= oh) continue;
            for (int kj = 0; kj < kw && kj <= wp; ++kj) {
                const int xx = wp - kj;
                if (xx % st_w != 0 || xx / st_w >= ow) continue;
                sum += dcols[((c * kh + ki) * kw + kj) * m + ((yy / st_h) * ow + xx / st_w) * n
                             + b];
            }
        }
        dx[c * sc + ho * sh + wo * sw + b * sn] = sum;
    }"""

_raw.register("im2col", _IM2COL_PARAMS, _IM2COL)
_raw.register("col2im", _COL2IM_PARAMS, _COL2IM)

Pair = tuple[int, int]


def enabled(a: Any) -> bool:
    """Whether the one-launch kernels serve the array `a` (a CuPy array, the switch on, and
    a dtype and size the kernels take)."""
    on = ENABLED if ENABLED is not None else os.environ.get("GPUNET_CONV_KERNELS", "") == "1"
    return bool(on) and is_gpu_array(a) and _raw.supported(a)


def _elements(a: Any) -> list[int]:
    """An array's strides in elements (the kernels index in elements)."""
    return [s // a.itemsize for s in a.strides]


def im2col(a: Any, kernel: Pair, stride: Pair, padding: Pair, ohw: Pair, xp: Any,
           out: Any = None) -> Any:
    """Columns of the (C, H, W, N) array `a` (any strides) as a (C·kh·kw, H'·W'·N) matrix,
    zero padding applied in the kernel: equal to
    `_im2col.im2col(_windows.pad(a, padding), kernel, stride, ohw)`. One launch."""
    c, h, w, n = a.shape
    k, m = c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n
    cols = xp.empty((k, m), dtype=a.dtype) if out is None else out
    _check_out(cols, (k, m), a.dtype, "im2col")
    if not cols.flags.c_contiguous:
        raise ValueError("im2col: out must be C-contiguous")
    args = (a, cols, *_ints(c, h, w, n, *_elements(a), *kernel, *stride, *padding, *ohw))
    _raw.kernel("im2col", a.dtype)((_raw.blocks(k * m),), (_raw.THREADS,), args)
    return cols


def col2im(dcols: Any, chw: tuple[int, int, int], kernel: Pair, stride: Pair, padding: Pair,
           ohw: Pair, xp: Any, out: Any = None) -> Any:
    """The adjoint of `im2col`: the (C, H, W, N) input gradient (unpadded) of the columns'
    gradient dcols (C·kh·kw, H'·W'·N). Equal to `_im2col.col2im` of the same columns into the
    padded shape followed by `_windows.unpad`. One launch; `out` may be any strided
    (C, H, W, N) view."""
    c, h, w = chw
    n = dcols.shape[1] // (ohw[0] * ohw[1])
    if dcols.shape != (c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n) or \
            not dcols.flags.c_contiguous:
        raise ValueError(f"col2im: dcols must be a C-contiguous ({c * kernel[0] * kernel[1]}, "
                         f"H'·W'·N) matrix, got shape {tuple(dcols.shape)}")
    dx = xp.empty((c, h, w, n), dtype=dcols.dtype) if out is None else out
    _check_out(dx, (c, h, w, n), dcols.dtype, "col2im")
    args = (dcols, dx, *_ints(c, h, w, n, *_elements(dx), *kernel, *stride, *padding, *ohw))
    _raw.kernel("col2im", dcols.dtype)((_raw.blocks(c * h * w * n),), (_raw.THREADS,), args)
    return dx


def _ints(*values: int) -> tuple[np.int32, ...]:
    """Scalar kernel arguments as C ints."""
    return tuple(np.int32(v) for v in values)


def _check_out(out: Any, shape: tuple[int, ...], dtype: Any, where: str) -> None:
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{where}: out must have shape {tuple(shape)} and dtype {dtype}, "
                         f"got {tuple(out.shape)} {out.dtype}")
