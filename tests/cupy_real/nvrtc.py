"""Compile a kernel exactly as CuPy builds it, on a machine with NVRTC but no GPU or driver.

CuPy's own code generators (`_kernel._get_elementwise_kernel`,
`_reduction._ReductionKernel_get_cached_function`, `raw._get_raw_module`) and its compile path
(`_core.core.compile_with_cache` -> `cuda.compiler._compile_with_cache_cuda` -> NVRTC) run
unchanged. Only what asks the driver is replaced, and only inside `offline_compiler`:
  - `compiler._get_arch` (the device's compute capability) returns the architecture asked for;
  - the per-device memo around `compiler._get_arch_for_options_for_nvrtc` (it asks the driver
    which device is current) is bypassed: the function it wraps runs;
  - `function.Module` is a subclass whose `load` keeps the cubin instead of loading it into a
    device, and whose `get_function` checks the kernel's symbol is in that cubin;
  - `CUPY_CACHE_IN_MEMORY=1`, so a cubin cached on disk by an earlier run is never reused.
Written against CuPy 13/14 (cupy/cuda/compiler.py, cupy/_core/{_kernel,_reduction,raw}.pyx).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

ARCHS = ("80", "90")
# _ArgKind in cupy/_core/_kernel.pxd
_NDARRAY, _INDEXER, _SCALAR = 1, 2, 3
# cupy/_core/_reduction.pyx: _default_block_size on CUDA
_REDUCTION_BLOCK = 512


@contextlib.contextmanager
def offline_compiler(arch: str) -> Iterator[list[bytes]]:
    """Within this block CuPy compiles for sm_`arch` without a device; yields the cubins."""
    from cupy.cuda import compiler, function

    cubins: list[bytes] = []

    class CapturedModule(function.Module):
        def load(self, cubin: bytes) -> None:
            cubins.append(bytes(cubin))

        def get_function(self, name: str) -> Any:
            lowered = (self.mapping or {}).get(name, name)
            if b".text." + lowered.encode() + b"\0" not in cubins[-1]:
                raise LookupError(f"kernel {name!r} ({lowered}) is not in the compiled cubin")
            return function.Function.__new__(function.Function)

    saved = (compiler._get_arch, compiler._get_arch_for_options_for_nvrtc, compiler.function)
    saved_env = os.environ.get("CUPY_CACHE_IN_MEMORY")
    compiler._get_arch = lambda: arch
    compiler._get_arch_for_options_for_nvrtc = saved[1].__wrapped__
    compiler.function = SimpleNamespace(Module=CapturedModule, LinkState=function.LinkState)
    os.environ["CUPY_CACHE_IN_MEMORY"] = "1"
    try:
        yield cubins
    finally:
        compiler._get_arch, compiler._get_arch_for_options_for_nvrtc, compiler.function = saved
        if saved_env is None:
            os.environ.pop("CUPY_CACHE_IN_MEMORY", None)
        else:
            os.environ["CUPY_CACHE_IN_MEMORY"] = saved_env


def _array_info(dtype: Any, ndim: int) -> Any:
    import cupy
    from cupy._core import _kernel

    return _kernel._ArgInfo(_NDARRAY, cupy.ndarray, np.dtype(dtype), ndim, True, True)


def _indexer_info(ndim: int) -> Any:
    from cupy._core import _carray, _kernel

    return _kernel._ArgInfo(_INDEXER, _carray.Indexer, None, ndim, True, True)


def _scalar_info(dtype: Any) -> Any:
    from cupy._core import _kernel, _scalar

    return _kernel._ArgInfo(_SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True, True)


def takes_dtype(kernel: Any) -> bool:
    """Whether an Elementwise/ReductionKernel has a type placeholder (`T x`) to specialise."""
    return any(p.dtype is None for p in (*kernel.in_params, *kernel.out_params))


def _dtypes(params: tuple, dtype: Any) -> tuple:
    return tuple(np.dtype(dtype) if p.dtype is None else np.dtype(p.dtype) for p in params)


def compile_elementwise(kernel: Any, dtype: Any, arch: str) -> bytes:
    """The cubin CuPy builds when `kernel` is called on C-contiguous `dtype` arrays (after
    CuPy's reduce_dims every argument is 1-D), compiled for sm_`arch`."""
    from cupy._core import _kernel

    ins, outs = _dtypes(kernel.in_params, dtype), _dtypes(kernel.out_params, dtype)
    _, _, type_map = kernel._decide_params_type(ins, outs)
    arginfos = tuple(_array_info(t, 1) for t in ins + outs) + (_indexer_info(1),)
    with offline_compiler(arch) as cubins:
        _kernel._get_elementwise_kernel.__wrapped__(
            arginfos, type_map, kernel.params, kernel.operation, kernel.name, kernel.preamble,
            **kernel.kwargs)
    return cubins[-1]


def compile_reduction(kernel: Any, dtype: Any, arch: str) -> bytes:
    """The cubin of `kernel` reducing 2-D C-contiguous `dtype` arrays along one axis."""
    from cupy._core import _kernel, _reduction

    ins, outs = _dtypes(kernel.in_params, dtype), _dtypes(kernel.out_params, dtype)
    _, _, type_map = _kernel._decide_params_type(kernel.in_params, kernel.out_params,
                                                 tuple(t.type for t in ins),
                                                 tuple(t.type for t in outs))
    # _AbstractReductionKernel._call adds the index type (int32 below 2**31 per output)
    type_map = _kernel._TypeMap(type_map._pairs + (("IndexT", "int32"),))
    arginfos = (tuple(_array_info(t, 2) for t in ins) + tuple(_array_info(t, 1) for t in outs)
                + (_indexer_info(2), _indexer_info(1), _scalar_info(np.int32)))
    with offline_compiler(arch) as cubins:
        _reduction._ReductionKernel_get_cached_function.__wrapped__(
            kernel.nin, kernel.nout, kernel._params, arginfos, type_map, kernel.name,
            _REDUCTION_BLOCK, kernel.reduce_type, kernel.identity, kernel.map_expr,
            kernel.reduce_expr, kernel.post_map_expr, kernel.preamble, kernel.options)
    return cubins[-1]


def compile_raw(kernel: Any, arch: str, **kwargs: Any) -> bytes:
    """The cubin of a RawKernel or RawModule (every kernel name's symbol checked). RawModule
    keeps `translate_cucomplex` and `jitify` private: pass its constructor's keywords."""
    import cupy
    from cupy._core import raw

    if isinstance(kernel, cupy.RawKernel):
        state, names = kernel.__getstate__(), [kernel.name]
    else:
        state = {"translate_cucomplex": False, "jitify": None, **kwargs,
                 "name_expressions": kernel.name_expressions}
        names = list(kernel.name_expressions or ())
    with offline_compiler(arch) as cubins:
        module = raw._get_raw_module.__wrapped__(
            kernel.code, None, kernel.options, kernel.backend, state["translate_cucomplex"],
            kernel.enable_cooperative_groups, bool(state["jitify"]), state["name_expressions"],
            None)
        for name in names:
            module.get_function(name)
    return cubins[-1]


def build(spec: Any) -> Any:
    """The real CuPy kernel object a KernelSpec describes."""
    import cupy

    return getattr(cupy, spec.kind)(*spec.args, **dict(spec.kwargs))


def compile_spec(spec: Any, dtype: Any, arch: str) -> bytes:
    """Compile one discovered kernel for one dtype (ignored by raw kernels) and architecture."""
    kernel = build(spec)
    if spec.kind == "ElementwiseKernel":
        return compile_elementwise(kernel, dtype, arch)
    if spec.kind == "ReductionKernel":
        return compile_reduction(kernel, dtype, arch)
    return compile_raw(kernel, arch, **dict(spec.kwargs))
