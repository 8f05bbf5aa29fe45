"""Augmentation: shifts move mass without losing it, rotations are small, batches stay put."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.augment import RandomShiftRotate
from tests.helpers import host


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
