"""cuBLAS called directly through ctypes, around CuPy's wrapper, so products can be captured.

CuPy's `cupy_backends.cuda.libs.cublas.sgemm` (and every other routine) first calls its own
`setStream`, which raises NotImplementedError while the stream captures. cuBLAS itself can be
captured into a CUDA graph when the handle's stream and workspace are set by the caller
(NVIDIA's cuBLAS guide, "CUDA Graphs Support"); PyTorch does just that. So this module loads
the libcublas that CuPy loaded, keeps one handle of its own per thread, and before each GEMM
calls `cublasSetStream_v2` (the current stream) and then `cublasSetWorkspace_v2` (setting the
stream resets the workspace to cuBLAS's default pool, which may allocate during capture).

Row-major arrays are column-major arrays transposed: C = A @ B is computed as Cᵀ = Bᵀ @ Aᵀ in
column-major terms, each operand passed with its own leading dimension, transposed by cuBLAS
where its memory is column-major (a transposed view), copied only when neither fits.

The A/B of `gpunet.kernels.gemm`'s RawKernel inside a captured step: GPUNET_CAPTURE_GEMM=cublas.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from typing import Any

import numpy as np

OP_N, OP_T = 0, 1
WORKSPACE_BYTES = 32 << 20  # NVIDIA's recommendation for Hopper; 4 MiB suffices before it
_state = threading.local()


class CublasError(RuntimeError):
    """A cuBLAS call returned a status other than CUBLAS_STATUS_SUCCESS."""


def find_library() -> str:
    """The path of the libcublas CuPy loaded into this process (else the linker's choice)."""
    import cupy_backends.cuda.libs.cublas  # noqa: F401 - loads libcublas into the process

    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if re.search(r"/libcublas\.so(\.\d+)*$", path):
                    return path
    except OSError:
        pass
    found = ctypes.util.find_library("cublas")
    if found is None:
        raise CublasError("libcublas was not found (CuPy loaded none into this process)")
    return found


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"{what} returned cuBLAS status {status}")


class Handle:
    """One cuBLAS handle with its own workspace (a CuPy buffer kept alive with it)."""

    def __init__(self, lib: Any, cp: Any, workspace_bytes: int = WORKSPACE_BYTES) -> None:
        self.lib = lib
        handle = ctypes.c_void_p()
        _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate_v2")
        self.ptr = handle
        self.workspace = cp.empty(workspace_bytes, dtype=np.uint8)

    def bind(self, stream_ptr: int) -> None:
        """Set the stream, then the workspace (in this order: setting the stream resets it)."""
        _check(self.lib.cublasSetStream_v2(self.ptr, ctypes.c_void_p(stream_ptr)),
               "cublasSetStream_v2")
        _check(self.lib.cublasSetWorkspace_v2(self.ptr, ctypes.c_void_p(_ptr(self.workspace)),
                                              ctypes.c_size_t(self.workspace.nbytes)),
               "cublasSetWorkspace_v2")


def handle(cp: Any) -> Handle:
    """This thread's handle (created on first use)."""
    h = getattr(_state, "handle", None)
    if h is None:
        h = _state.handle = Handle(ctypes.CDLL(find_library()), cp)
    return h


def _ptr(a: Any) -> int:
    """Device address of a CuPy array (host address of a NumPy one, for the tests)."""
    data = a.data
    return int(data.ptr) if hasattr(data, "ptr") else int(a.ctypes.data)


def layout(a: Any) -> tuple[str, int] | None:
    """("row", ld) when the 2-D array's rows are contiguous, ("col", ld) when its columns are,
    with ld its leading dimension in elements; None when neither (it must be copied)."""
    (r, c), (s0, s1) = a.shape, (s // a.itemsize for s in a.strides)
    if (s1 == 1 or c == 1) and (r == 1 or s0 >= max(c, 1)):
        return "row", max(s0 if r > 1 else c, c, 1)
    if (s0 == 1 or r == 1) and (c == 1 or s1 >= max(r, 1)):
        return "col", max(s1 if c > 1 else r, r, 1)
    return None


def gemm(a: Any, b: Any, out: Any, cp: Any, h: Handle | None = None,
         stream_ptr: int | None = None) -> Any:
    """out = a @ b by cuBLAS (float32 or float64; `out` rows contiguous, else a temporary)."""
    h = h if h is not None else handle(cp)
    (m, k), n = a.shape, b.shape[1]
    target = out if layout(out) is not None and layout(out)[0] == "row" else \
        cp.empty((m, n), dtype=out.dtype)
    la, lb = layout(a), layout(b)
    if la is None:
        a, la = cp.ascontiguousarray(a), ("row", max(k, 1))
    if lb is None:
        b, lb = cp.ascontiguousarray(b), ("row", max(n, 1))
    h.bind(cp.cuda.get_current_stream().ptr if stream_ptr is None else stream_ptr)
    # column-major: Cᵀ(n×m) = Bᵀ(n×k) @ Aᵀ(k×m); a row-major operand is its transpose already
    op_b, op_a = (OP_N if lb[0] == "row" else OP_T), (OP_N if la[0] == "row" else OP_T)
    if out.dtype == np.float32:
        fn, scalar = h.lib.cublasSgemm_v2, ctypes.c_float
    else:
        fn, scalar = h.lib.cublasDgemm_v2, ctypes.c_double
    one, zero = scalar(1.0), scalar(0.0)
    _check(fn(h.ptr, op_b, op_a, n, m, k, ctypes.byref(one), ctypes.c_void_p(_ptr(b)), lb[1],
              ctypes.c_void_p(_ptr(a)), la[1], ctypes.byref(zero),
              ctypes.c_void_p(_ptr(target)), layout(target)[1]), "cublas gemm")
    if target is not out:
        out[...] = target
    return out
