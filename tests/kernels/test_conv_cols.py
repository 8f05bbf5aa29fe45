"""The one-launch im2col/col2im RawKernels (gpunet.kernels.conv_cols) against the NumPy path they
replace: their CUDA source compiled as C++ for the CPU (tests/kernels/host_compiled.py) and,
marked gpu, on a real GPU."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.kernels import conv_cols
from gpunet.layers import _im2col as im
from gpunet.layers import _windows as win
from tests.helpers import host

# (C, H, W, N), kernel, stride, padding
CASES = [((1, 8, 8, 3), (3, 3), (1, 1), (1, 1)),
         ((2, 9, 7, 2), (5, 5), (1, 1), (0, 0)),
         ((3, 10, 11, 2), (3, 2), (2, 3), (1, 2)),
         ((2, 6, 6, 4), (2, 2), (2, 2), (0, 0)),
         ((1, 5, 5, 1), (5, 5), (1, 1), (2, 2))]


def _geometry(shape, kernel, stride, padding):
    c, h, w, n = shape
    ohw = win.out_hw("test", (h, w), kernel, stride, padding, "kernel_size", shape)
    return ohw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride,padding", CASES)
def test_im2col_equals_numpy_path_for_chwn_and_nchw_memory(raw_xp, shape, kernel, stride,
                                                           padding, dtype):
    xp = raw_xp
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(dtype)
    ohw = _geometry(shape, kernel, stride, padding)
    expected = im.im2col(win.pad(a, padding, np), kernel, stride, ohw, np)
    got = conv_cols.im2col(xp.asarray(a), kernel, stride, padding, ohw, xp)
    np.testing.assert_array_equal(host(got), expected)  # pure copies: exact
    nchw = xp.ascontiguousarray(xp.asarray(a).transpose(3, 0, 1, 2))  # NCHW, read by strides
    got = conv_cols.im2col(nchw.transpose(1, 2, 3, 0), kernel, stride, padding, ohw, xp)
    np.testing.assert_array_equal(host(got), expected)


def _col2im_numpy(dcols, shape, kernel, stride, padding, ohw):
    """The NumPy path's col2im: kh·kw adds into a zeroed padded buffer, then unpad."""
    c, h, w, n = shape
    padded = (c, h + 2 * padding[0], w + 2 * padding[1], n)
    return win.unpad(im.col2im(dcols, padded, kernel, stride, ohw, np), padding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride,padding", CASES)
def test_col2im_equals_numpy_path(raw_xp, shape, kernel, stride, padding, dtype):
    xp = raw_xp
    rng = np.random.default_rng(1)
    c, h, w, n = shape
    ohw = _geometry(shape, kernel, stride, padding)
    dcols = rng.standard_normal((c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n)).astype(dtype)
    expected = _col2im_numpy(dcols, shape, kernel, stride, padding, ohw)
    got = conv_cols.col2im(xp.asarray(dcols), (c, h, w), kernel, stride, padding, ohw, xp)
    assert got.shape == shape and got.flags.c_contiguous
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(host(got), expected, rtol=tol, atol=tol)
    nchw = xp.full((n, c, h, w), np.nan, dtype=dtype)  # written through a strided view
    conv_cols.col2im(xp.asarray(dcols), (c, h, w), kernel, stride, padding, ohw, xp,
                     out=nchw.transpose(1, 2, 3, 0))
    np.testing.assert_allclose(host(nchw).transpose(1, 2, 3, 0), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,kernel,stride,padding", CASES)
def test_col2im_is_the_adjoint_of_im2col(raw_xp, shape, kernel, stride, padding):
    """<im2col(a), D> = <a, col2im(D)> in float64: the gradient identity backward relies on."""
    rng = np.random.default_rng(2)
    c, h, w, n = shape
    ohw = _geometry(shape, kernel, stride, padding)
    a = rng.standard_normal(shape)
    d = rng.standard_normal((c * kernel[0] * kernel[1], ohw[0] * ohw[1] * n))
    xp = raw_xp
    cols = host(conv_cols.im2col(xp.asarray(a), kernel, stride, padding, ohw, xp))
    lhs = float((cols * d).sum())
    dx = host(conv_cols.col2im(xp.asarray(d), (c, h, w), kernel, stride, padding, ohw, xp))
    assert lhs == pytest.approx(float((a * dx).sum()), rel=1e-12)


def test_bad_outputs_and_columns_are_refused(raw_xp):
    xp = raw_xp
    a = xp.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match=r"im2col: out must have shape \(9, 8\)"):
        conv_cols.im2col(a, (3, 3), (1, 1), (0, 0), (2, 2), xp, out=xp.zeros((10, 8), np.float32))
    with pytest.raises(ValueError, match="im2col: out must be C-contiguous"):
        conv_cols.im2col(a, (3, 3), (1, 1), (0, 0), (2, 2), xp,
                         out=xp.zeros((8, 9), np.float32).T)
    with pytest.raises(ValueError, match="col2im: dcols must be a C-contiguous"):
        conv_cols.col2im(xp.zeros((8, 8), np.float32), (1, 4, 4), (3, 3), (1, 1), (0, 0),
                         (2, 2), xp)


def test_switch_is_off_by_default_and_never_takes_numpy_arrays(monkeypatch):
    monkeypatch.delenv("GPUNET_CONV_KERNELS", raising=False)
    monkeypatch.setattr(conv_cols, "is_gpu_array", lambda a: True)
    a = np.zeros((2, 3), np.float32)
    assert not conv_cols.enabled(a)
    monkeypatch.setenv("GPUNET_CONV_KERNELS", "1")
    assert conv_cols.enabled(a)
    assert not conv_cols.enabled(a.astype(np.float16))  # the kernels take float32/64 only
    monkeypatch.setattr(conv_cols, "ENABLED", False)
    assert not conv_cols.enabled(a)
    monkeypatch.undo()
    monkeypatch.setenv("GPUNET_CONV_KERNELS", "1")
    assert not conv_cols.enabled(a)  # a NumPy array: never
