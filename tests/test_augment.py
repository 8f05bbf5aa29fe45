"""Augmentation: shifts move mass without losing it, rotations are small, batches stay put."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.augment import RandomShiftRotate
from tests.helpers import host, torch


def square(xp, n=4):
    x = np.zeros((n, 1, 28, 28), np.float32)
    x[:, 0, 11:17, 11:17] = 1
    return xp.asarray(x)


def test_identity_when_no_shift_or_rotation(xp):
    x = square(xp)
    np.testing.assert_array_equal(host(RandomShiftRotate(0, 0)(x, xp)), host(x))


def test_shift_moves_the_image_without_losing_mass(xp):
    x = square(xp, 16)
    y = host(RandomShiftRotate(max_shift=2, max_degrees=0)(x, xp))
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), 36, rtol=1e-5)
    moved = [not np.array_equal(y[i], host(x)[i]) for i in range(16)]
    assert sum(moved) >= 8  # most samples moved (a draw of 0,0 is possible)


def test_rotation_keeps_centre_mass_and_flat_layout(xp):
    x = square(xp, 8).reshape(8, 784)
    y = host(RandomShiftRotate(max_shift=0, max_degrees=15)(x, xp))
    assert y.shape == (8, 784)
    np.testing.assert_allclose(y.sum(axis=1), 36, rtol=0.1)


def test_wrong_image_shape_is_a_clear_error(xp):
    with pytest.raises(ValueError, match=r"RandomShiftRotate.*\(100,\).*\(1, 28, 28\)"):
        RandomShiftRotate()(xp.zeros((2, 100), dtype=xp.float32), xp)


def test_matches_torch_grid_sample(xp, monkeypatch):
    """Bilinear sampling with zeros outside, against PyTorch's grid_sample, with shifts and
    angles large enough to sample past every edge, 2 channels and a non-square image."""
    t = torch()
    n, c, h, w = 6, 2, 9, 11
    rng = np.random.default_rng(4)
    x = rng.random((n, c, h, w)).astype(np.float32)
    theta = rng.uniform(-0.6, 0.6, (n, 1)).astype(np.float32)
    tx, ty = rng.integers(-3, 4, (2, n, 1)).astype(np.float32)
    aug = RandomShiftRotate(image_shape=(c, h, w))
    monkeypatch.setattr(aug, "_draw", lambda n_, xp_, dtype: tuple(
        xp_.asarray(a) for a in (theta, tx, ty)))
    got = host(aug(xp.asarray(x), xp))
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    th = theta.astype(np.float64)[:, :, None]
    u, v = xx - cx - tx[:, :, None], yy - cy - ty[:, :, None]
    sx = np.cos(th) * u + np.sin(th) * v + cx  # (n, h, w) source positions
    sy = -np.sin(th) * u + np.cos(th) * v + cy
    grid = np.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], axis=-1)
    want = t.nn.functional.grid_sample(t.from_numpy(x).double(), t.from_numpy(grid),
                                       mode="bilinear", padding_mode="zeros",
                                       align_corners=True).numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    flat = host(aug(xp.asarray(x.reshape(n, -1)), xp))
    np.testing.assert_allclose(flat.reshape(x.shape), want, atol=2e-5)


def test_a_shift_moves_content_the_right_way(xp, monkeypatch):
    aug = RandomShiftRotate()
    zero, one = np.zeros((4, 1), np.float32), np.ones((4, 1), np.float32)
    monkeypatch.setattr(aug, "_draw", lambda n, xp_, dtype: (xp_.asarray(zero),
                                                            xp_.asarray(one),
                                                            xp_.asarray(-one)))
    y = host(aug(square(xp), xp))
    want = np.zeros((4, 1, 28, 28), np.float32)
    want[:, 0, 10:16, 12:18] = 1  # one pixel right (tx = +1) and one up (ty = -1)
    np.testing.assert_array_equal(y, want)
