"""The GEMM RawKernel (gpunet.kernels.gemm) against NumPy's matmul, its CUDA source compiled as
C++ for the CPU (tests/kernels/host_compiled.py) and, marked gpu, on a real GPU; and `matmul`'s
dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.kernels import gemm
from tests.helpers import host

# (M, K, N): odd edges, one block, several blocks, K split between blocks, the models' shapes
SHAPES = [(1, 1, 1), (5, 7, 3), (65, 33, 70), (3, 5000, 4), (26, 2000, 20), (20, 26, 300),
          (16, 100, 64), (7, 0, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_equals_numpy_for_every_layout(raw_xp, m, k, n, dtype):
    xp = raw_xp
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    tol = 2e-5 * max(1, np.sqrt(k)) if dtype == np.float32 else 1e-12 * max(1, k)
    a, b = xp.asarray(a), xp.asarray(b)
    at, bt = xp.ascontiguousarray(a.T).T, xp.ascontiguousarray(b.T).T  # transposed memory
    for x, y in ((a, b), (at, b), (a, bt), (at, bt)):
        np.testing.assert_allclose(host(gemm.gemm(x, y)), expected, rtol=tol, atol=tol)
    out = xp.full((n, m), np.nan, dtype=dtype)  # into a strided (transposed) view
    gemm.gemm(a, b, out=out.T)
    np.testing.assert_allclose(host(out).T, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("m,k,n", SHAPES + [(128, 784, 256), (26, 73728, 20), (20, 26, 73728)])
def test_plan_covers_the_product_exactly_once(m, k, n):
    (gx, gy, gz), kchunk = gemm.plan(m, n, k)
    assert gx * gemm.BLOCK[0] * gemm.TN >= n > (gx - 1) * gemm.BLOCK[0] * gemm.TN
    assert gy * gemm.BLOCK[1] * gemm.TM >= m > (gy - 1) * gemm.BLOCK[1] * gemm.TM
    assert gz * kchunk >= k and (gz - 1) * kchunk < max(k, 1)  # no split is empty
    assert gz == 1 or kchunk >= gemm.MIN_CHUNK or gx * gy * gz <= gemm.TARGET_BLOCKS


def test_long_sums_are_split():
    """The conv weight gradient of the cnn at batch 128 sums 73,728 products per entry: the
    plan splits them over many blocks (one block would serialise the whole sum)."""
    (gx, gy, gz), kchunk = gemm.plan(26, 20, 73728)
    assert gx * gy == 1 and gz >= 100


def test_shapes_and_outputs_are_checked(raw_xp):
    a = raw_xp.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4, 5\) do not align"):
        gemm.gemm(a, raw_xp.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 5\)"):
        gemm.gemm(a, raw_xp.zeros((3, 5), np.float32), out=raw_xp.zeros((5, 2), np.float32))


class _DeviceLike(np.ndarray):
    """Stands in for a device array: any type but plain np.ndarray goes through the dispatch."""


def test_matmul_dispatch(monkeypatch):
    """NumPy arrays always take NumPy's matmul; CuPy arrays take CuPy's `@` by default, the
    kernel (or direct cuBLAS) inside `kernel_products()`, or what GPUNET_GEMM names."""
    for var in ("GPUNET_GEMM", "GPUNET_CAPTURE_GEMM"):
        monkeypatch.delenv(var, raising=False)
    calls = []
    monkeypatch.setattr(gemm, "gemm", lambda a, b, out=None: calls.append("kernel") or a @ b)
    monkeypatch.setattr(gemm.cublas_direct, "gemm",
                        lambda a, b, out, xp: calls.append("cublas") or np.matmul(a, b, out=out))
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with gemm.kernel_products():
        np.testing.assert_array_equal(gemm.matmul(a, b), a @ b)
    assert calls == [] and gemm.product_backend() == "cupy"
    monkeypatch.setattr(gemm, "is_gpu_array", lambda x: True)
    a, b = a.view(_DeviceLike), b.view(_DeviceLike)  # not plain NumPy: the dispatch decides
    gemm.matmul(a, b)
    assert calls == []
    with gemm.kernel_products():
        assert gemm.product_backend() == "kernel"
        gemm.matmul(a, b)
        gemm.matmul(a.astype(np.float16), b.astype(np.float16))  # not a kernel dtype: matmul
        gemm.matmul(a, b.astype(np.float64))  # mixed dtypes: matmul
        monkeypatch.setenv("GPUNET_CAPTURE_GEMM", "cublas")
        np.testing.assert_array_equal(gemm.matmul(a, b), a @ b)
    assert calls == ["kernel", "cublas"] and gemm.product_backend() == "cupy"
    monkeypatch.setenv("GPUNET_GEMM", "kernel")
    out = np.empty((2, 4), np.float32)
    gemm.matmul(a, b, out=out)
    assert calls == ["kernel", "cublas", "kernel"]
    monkeypatch.setenv("GPUNET_GEMM", "cuBLAS")
    with pytest.raises(ValueError, match=r"expected one of \('cupy', 'kernel', 'cublas'\), "
                                         r"got 'cuBLAS'"):
        gemm.matmul(a, b)


def test_matmul_on_numpy_writes_into_out():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    out = np.empty((2, 4))
    assert gemm.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, a @ b)
