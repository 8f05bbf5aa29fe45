"""A GEMM RawKernel for the small products of gpunet's models, and `matmul`, the one call the
layers make for a product: CuPy's `@` (cuBLAS) normally, this kernel where cuBLAS cannot go.

Why: CuPy refuses every cuBLAS call while a stream is being captured into a CUDA graph
(`cupy_backends/cuda/libs/cublas.pyx`: each routine first calls `setStream`, which raises
NotImplementedError during capture). So inside a captured training step
(`gpunet.training.cuda_graph`) every product runs this kernel instead.

The kernel: C(M, N) = A(M, K) @ B(K, N) for any element strides of A, B and C (so transposed
views need no copy). Each thread computes a TM×TN block of C from registers over a range of K,
with no shared memory (the same source runs on the CPU in the tests); long sums over K are split
between `gridDim.z` blocks whose partial products are summed by one reduction.

Switches: inside a captured step GPUNET_CAPTURE_GEMM=kernel (default) or cublas (cuBLAS called
directly, `gpunet.kernels.cublas_direct`); for eager steps GPUNET_GEMM=kernel or cublas (default:
CuPy's `@`), for A/B timings against cuBLAS through CuPy.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpunet.backend import is_gpu_array, xp_of
from gpunet.kernels import _raw, cublas_direct

TM = TN = 4  # the block of C each thread computes
BLOCK = (16, 16)  # threads per block along N and M
MIN_CHUNK = 64  # no split of K shorter than this
TARGET_BLOCKS = 512  # split K until the grid has about this many blocks
FORCE = ""  # "kernel" or "cublas": eager products off CuPy's cuBLAS; "": GPUNET_GEMM
BACKENDS = ("cupy", "kernel", "cublas")

_PARAMS = ("const T* a, const T* b, T* c, int m, int n, int k, int sam, int sak, int sbk, "
           "int sbn, int scm, int scn, int scz, int kchunk")
_BODY = f"""\
    const int col0 = (blockIdx.x * blockDim.x + threadIdx.x) * {TN};
    const int row0 = (blockIdx.y * blockDim.y + threadIdx.y) * {TM};
    const int k0 = blockIdx.z * kchunk;
    const int k1 = k0 + kchunk < k ? k0 + kchunk : k;
    if (row0 >= m || col0 >= n) return;
    T acc[{TM}][{TN}];
    for (int i = 0; i < {TM}; ++i)
        for (int j = 0; j < {TN}; ++j) acc[i][j] = (T)0;
    for (int p = k0; p < k1; ++p) {{
        T av[{TM}], bv[{TN}];
        for (int i = 0; i < {TM}; ++i) av[i] = row0 + i < m ? a[(row0 + i) * sam + p * sak] : (T)0;
        for (int j = 0; j < {TN}; ++j) bv[j] = col0 + j < n ? b[p * sbk + (col0 + j) * sbn] : (T)0;
        for (int i = 0; i < {TM}; ++i)
            for (int j = 0; j < {TN}; ++j) acc[i][j] += av[i] * bv[j];
    }}
    T* cz = c + blockIdx.z * scz;
    for (int i = 0; i < {TM} && row0 + i < m; ++i)
        for (int j = 0; j < {TN} && col0 + j < n; ++j)
            cz[(row0 + i) * scm + (col0 + j) * scn] = acc[i][j];"""

_raw.register("gemm", _PARAMS, _BODY)

_state = threading.local()


@contextlib.contextmanager
def kernel_products() -> Iterator[None]:
    """Within this block (this thread), `matmul` of CuPy arrays goes around CuPy's cuBLAS
    wrapper: the GEMM kernel, or cuBLAS called directly with GPUNET_CAPTURE_GEMM=cublas."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def product_backend() -> str:
    """What `matmul` of CuPy arrays runs now: "cupy" (CuPy's `@`), "kernel" or "cublas"."""
    if getattr(_state, "depth", 0):
        choice = os.environ.get("GPUNET_CAPTURE_GEMM", "") or "kernel"
    else:
        choice = FORCE or os.environ.get("GPUNET_GEMM", "") or "cupy"
    if choice not in BACKENDS:
        raise ValueError(f"GPUNET_GEMM / GPUNET_CAPTURE_GEMM: expected one of {BACKENDS}, "
                         f"got {choice!r}")
    return choice


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """a @ b (2-D), into `out` when given: NumPy's or CuPy's matmul, or for CuPy arrays the
    GEMM kernel or direct cuBLAS (inside `kernel_products()`, or chosen by GPUNET_GEMM)."""
    if type(a) is np.ndarray:  # the CPU: NumPy's matmul, nothing else to decide
        return a @ b if out is None else np.matmul(a, b, out=out)
    arrays = (a, b) if out is None else (a, b, out)
    choice = product_backend() if is_gpu_array(a) else "cupy"  # the eager default: "cupy"
    if choice != "cupy" and all(x.ndim == 2 for x in arrays) and _raw.supported(*arrays):
        if choice == "kernel":
            return gemm(a, b, out)
        if choice == "cublas":
            xp = xp_of(a)
            if a.shape[1] != b.shape[0]:
                raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do "
                                 "not align")
            target = xp.empty((a.shape[0], b.shape[1]), dtype=a.dtype) if out is None else out
            return cublas_direct.gemm(a, b, target, xp)
    if out is None:
        return a @ b
    return xp_of(a).matmul(a, b, out=out)


def plan(m: int, n: int, k: int) -> tuple[tuple[int, int, int], int]:
    """(grid, kchunk): blocks along N, M and splits of K, and the length of each split."""
    gx = -(-n // (BLOCK[0] * TN))
    gy = -(-m // (BLOCK[1] * TM))
    splits = max(1, min(TARGET_BLOCKS // (gx * gy), -(-k // MIN_CHUNK)))
    kchunk = -(-k // splits) if k else 1
    return (gx, gy, -(-k // kchunk) if k else 1), kchunk


def gemm(a: Any, b: Any, out: Any = None) -> Any:
    """C = A @ B by the GEMM kernel (CuPy arrays of one float dtype, any strides)."""
    xp = xp_of(a)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align")
    c = xp.empty((m, n), dtype=a.dtype) if out is None else out
    if tuple(c.shape) != (m, n) or c.dtype != a.dtype:
        raise ValueError(f"matmul: out must have shape {(m, n)} and dtype {a.dtype}, "
                         f"got {tuple(c.shape)} {c.dtype}")
    grid, kchunk = plan(m, n, k)
    target = c if grid[2] == 1 else xp.empty((grid[2], m, n), dtype=a.dtype)
    sc = [s // c.itemsize for s in target.strides]
    scm, scn, scz = (sc[0], sc[1], 0) if grid[2] == 1 else (sc[1], sc[2], sc[0])
    ints = [np.int32(v) for v in (m, n, k, *(s // a.itemsize for s in a.strides),
                                  *(s // b.itemsize for s in b.strides), scm, scn, scz, kchunk)]
    _raw.kernel("gemm", a.dtype)(grid, (*BLOCK, 1), (a, b, target, *ints))
    if grid[2] > 1:
        xp.sum(target, axis=0, out=c)
    return c
