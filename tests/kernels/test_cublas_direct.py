"""Direct cuBLAS (gpunet.kernels.cublas_direct) against a stand-in libcublas that computes
column-major GEMMs from raw pointers, as cuBLAS does: the row-major → column-major mapping
(operations, leading dimensions, transposed views) checked against NumPy, and the order of the
calls that makes capture possible (stream, then workspace, before every GEMM)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from gpunet.kernels import cublas_direct as cd


class FakeCublas:
    """libcublas's five functions used, over host memory (pointers are NumPy addresses)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.memory: dict[int, np.ndarray] = {}

    def cublasCreate_v2(self, out):
        ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))[0] = 1234
        self.calls.append("create")
        return 0

    def cublasSetStream_v2(self, h, stream):
        self.calls.append(f"stream {stream.value}")
        return 0

    def cublasSetWorkspace_v2(self, h, ptr, size):
        self.calls.append(f"workspace {size.value}")
        return 0

    def _gemm(self, dtype, h, opa, opb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        self.calls.append("gemm")
        assert h.value == 1234 and beta._obj.value == 0  # C is not read

        def mat(ptr, rows, cols, ld):  # column-major rows × cols with leading dimension ld
            base = self.memory[ptr.value]
            return np.lib.stride_tricks.as_strided(
                base, shape=(rows, cols), strides=(base.itemsize, ld * base.itemsize))
        am = mat(a, *((m, k) if opa == cd.OP_N else (k, m)), lda)
        bm = mat(b, *((k, n) if opb == cd.OP_N else (n, k)), ldb)
        am, bm = (am if opa == cd.OP_N else am.T), (bm if opb == cd.OP_N else bm.T)
        assert ldc >= max(1, m) and lda >= 1 and ldb >= 1
        cm = mat(c, m, n, ldc)
        assert am.dtype == bm.dtype == cm.dtype == dtype
        cm[...] = alpha._obj.value * (am @ bm)
        return 0

    def __getattr__(self, name):
        if name == "cublasSgemm_v2":
            return lambda *args: self._gemm(np.float32, *args)
        if name == "cublasDgemm_v2":
            return lambda *args: self._gemm(np.float64, *args)
        raise AttributeError(name)


class HostPtrs:
    """`cp` for cublas_direct on the host: arrays register their memory with the fake lib."""

    def __init__(self, lib: FakeCublas) -> None:
        self.lib = lib
        self.cuda = type("cuda", (), {"get_current_stream": staticmethod(
            lambda: type("S", (), {"ptr": 77})())})

    def register(self, a: np.ndarray) -> np.ndarray:
        base = a
        while base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        flat = np.lib.stride_tricks.as_strided(base, shape=(base.size,),
                                               strides=(base.itemsize,))
        start = (a.ctypes.data - base.ctypes.data) // a.itemsize
        self.lib.memory[a.ctypes.data] = flat[start:]
        return a

    def empty(self, shape, dtype):
        return self.register(np.empty(shape, dtype))

    def ascontiguousarray(self, a):
        return self.register(np.ascontiguousarray(a))


@pytest.fixture
def lib():
    return FakeCublas()


def _views(a: np.ndarray) -> list[np.ndarray]:
    """`a`'s values as a C-ordered array, a transposed view, and a slice with ld > columns."""
    wide = np.zeros((a.shape[0], a.shape[1] + 3), a.dtype)
    wide[:, :a.shape[1]] = a
    return [a.copy(), np.asfortranarray(a), wide[:, :a.shape[1]]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 7, 3), (4, 1, 6), (1, 9, 2), (6, 4, 1)])
def test_gemm_maps_row_major_products_onto_cublas(lib, m, k, n, dtype):
    cp = HostPtrs(lib)
    h = cd.Handle(lib, cp, workspace_bytes=64)
    rng = np.random.default_rng(m + 10 * k + 100 * n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    for av in _views(a):
        for bv in _views(b):
            for out in (np.full((m, n), np.nan, dtype), np.full((n, m), np.nan, dtype).T):
                cd.gemm(cp.register(av), cp.register(bv), cp.register(out), cp, h)
                np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-6)
    assert lib.calls[0] == "create"
    rest = lib.calls[1:]
    assert rest == ["stream 77", "workspace 64", "gemm"] * (len(rest) // 3)  # every time


def test_a_strided_operand_is_copied_first(lib):
    cp = HostPtrs(lib)
    h = cd.Handle(lib, cp, workspace_bytes=8)
    a = np.arange(24.0).reshape(4, 6)[:, ::2]  # neither rows nor columns contiguous
    assert cd.layout(a) is None
    b = np.ones((3, 2))
    out = cp.register(np.empty((4, 2)))
    cd.gemm(cp.register(a), cp.register(b), out, cp, h)
    np.testing.assert_array_equal(out, a @ b)


def test_layout():
    a = np.zeros((3, 4), np.float32)
    assert cd.layout(a) == ("row", 4)
    assert cd.layout(a.T) == ("col", 4)
    assert cd.layout(np.zeros((3, 10), np.float32)[:, :4]) == ("row", 10)
    assert cd.layout(np.zeros((1, 5))) == ("row", 5)


def test_a_failing_status_is_an_error(lib):
    lib.cublasSetStream_v2 = lambda h, s: 7
    h = cd.Handle(lib, HostPtrs(lib), workspace_bytes=8)
    with pytest.raises(cd.CublasError, match="cublasSetStream_v2 returned cuBLAS status 7"):
        h.bind(1)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_cublas_equals_cupy_on_a_gpu(dtype):
    from gpunet import backend

    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    cp = backend._import_cupy()
    rng = np.random.default_rng(0)
    a = cp.asarray(rng.standard_normal((37, 300)).astype(dtype))
    b = cp.asarray(rng.standard_normal((300, 21)).astype(dtype))
    for x, y in ((a, b), (cp.ascontiguousarray(a.T).T, b), (a, cp.ascontiguousarray(b.T).T)):
        out = cp.empty((37, 21), dtype)
        cd.gemm(x, y, out, cp)
        np.testing.assert_allclose(out.get(), (a @ b).get(), rtol=1e-4, atol=1e-4)
