"""RawKernels written as C templates over one element type `T`, built once per (name, dtype).

Every raw kernel is one `extern "C" __global__` function named `gpunet_<name>_<f32|f64>`, using
only CUDA's built-in indices (blockIdx, blockDim, threadIdx, gridDim) and no shared memory or
`__syncthreads`: the same source then also compiles as plain C++ for the CPU, so tests can run
the kernel's index maths on the host (tests/kernels/host_compiled.py). The NVRTC compile tests
(tests/cupy_real) find every one of them by walking the source, as they find the other kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.backend import _import_cupy

# name -> (C template with `T` and `NAME`, parameter list "type name, ..." of the kernel)
SOURCES: dict[str, tuple[str, str]] = {}
TYPES = {np.dtype(np.float32): ("float", "f32"), np.dtype(np.float64): ("double", "f64")}
THREADS = 256  # threads per block of the one-dimensional kernels
_cache: dict[tuple[str, str], Any] = {}


def register(name: str, params: str, body: str) -> None:
    """Add a kernel template: `params` its C parameter list, `body` its statements."""
    SOURCES[name] = (body, params)


def function_name(name: str, dtype: Any) -> str:
    """The C name of kernel `name` for `dtype` (float32 or float64)."""
    return f"gpunet_{name}_{TYPES[np.dtype(dtype)][1]}"


def source(name: str, dtype: Any) -> str:
    """The complete CUDA C source of kernel `name` for `dtype`."""
    body, params = SOURCES[name]
    ctype = TYPES[np.dtype(dtype)][0]
    return (f"typedef {ctype} T;\n"
            f'extern "C" __global__ void {function_name(name, dtype)}({params}) {{\n'
            f"{body}\n}}\n")


def kernel(name: str, dtype: Any) -> Any:
    """The cached `cupy.RawKernel` of `name` for `dtype`. The first call makes the kernel for
    every type (CuPy compiles each only at its first launch), in a loop over `TYPES` that the
    kernel walk of tests/cupy_real resolves statically, as it resolves the other kernels."""
    key = (name, np.dtype(dtype).name)
    if key not in _cache:
        cp = _import_cupy()
        for t in TYPES:
            _cache[(name, t.name)] = cp.RawKernel(source(name, t), function_name(name, t))
    return _cache[key]


def blocks(total: int, threads: int = THREADS, most: int = 65535) -> int:
    """Blocks for a grid-stride loop over `total` items."""
    return max(1, min(most, -(-total // threads)))


def supported(*arrays: Any) -> bool:
    """Whether the raw kernels take these arrays: float32/float64, one dtype, and every index
    of each array's memory span below 2³¹ (the kernels index with 32-bit ints)."""
    dtype = arrays[0].dtype
    if np.dtype(dtype) not in TYPES or any(a.dtype != dtype for a in arrays):
        return False
    return all(_span(a) < 2**31 for a in arrays)


def _span(a: Any) -> int:
    """Elements between an array's lowest and highest address, plus one."""
    if a.size == 0:
        return 0
    return 1 + sum((n - 1) * abs(s) // a.itemsize for n, s in zip(a.shape, a.strides, strict=True))
