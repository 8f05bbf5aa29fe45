"""Create each CuPy ElementwiseKernel once per process, on first use."""

from __future__ import annotations

from typing import Any

from gpunet.backend import _import_cupy

_cache: dict[str, Any] = {}


def elementwise(name: str, in_params: str, out_params: str, operation: str) -> Any:
    """Return the cached `cupy.ElementwiseKernel` called `name`, building it the first time."""
    kernel = _cache.get(name)
    if kernel is None:
        cp = _import_cupy()
        kernel = cp.ElementwiseKernel(in_params, out_params, operation, f"gpunet_{name}")
        _cache[name] = kernel
    return kernel


def compiled_kernels() -> list[str]:
    """Names of the kernels created so far in this process (for tests and diagnostics)."""
    return sorted(_cache)
