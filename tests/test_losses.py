"""Losses: finite differences, PyTorch as the oracle, stability, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.gradcheck import check_gradients
from tests.helpers import close, torch

RNG = np.random.default_rng(0)
LABELS = np.array([0, 2, 1, 2, 0])
ONEHOT = np.eye(3)[LABELS]


@pytest.mark.parametrize("loss", [gn.losses.MSE(), gn.losses.BinaryCrossEntropy(),
                                  gn.losses.CrossEntropy()])
@pytest.mark.parametrize("target", [LABELS, ONEHOT], ids=["labels", "onehot"])
def test_loss_gradcheck(xp, loss, target):
    pred = xp.asarray(RNG.uniform(0.1, 0.9, size=(5, 3)))
    assert set(check_gradients(loss, pred, xp.asarray(target))) == {"pred"}


def test_cross_entropy_soft_targets_gradcheck(xp):
    soft = RNG.dirichlet([1, 1, 1], 5)
    check_gradients(gn.losses.CrossEntropy(), xp.asarray(RNG.normal(size=(5, 3))),
                    xp.asarray(soft))


@pytest.mark.parametrize("target", [LABELS, ONEHOT], ids=["labels", "onehot"])
def test_cross_entropy_matches_torch(xp, target):
    t = torch()
    z = RNG.normal(size=(5, 3)).astype(np.float32)
    value, grad = gn.losses.CrossEntropy()(xp.asarray(z), xp.asarray(target))
    tz = t.from_numpy(z).requires_grad_()
    ref = t.nn.functional.cross_entropy(tz, t.from_numpy(LABELS))
    ref.backward()
    assert abs(value - ref.item()) < 1e-5
    close(grad, tz.grad.numpy())


def test_mse_is_the_quadratic_cost_and_matches_torch(xp):
    t = torch()
    a = RNG.normal(size=(5, 3)).astype(np.float32)
    y = RNG.normal(size=(5, 3)).astype(np.float32)
    value, grad = gn.losses.MSE()(xp.asarray(a), xp.asarray(y))
    ta = t.from_numpy(a).requires_grad_()
    ref = ((ta - t.from_numpy(y)) ** 2).sum() / (2 * 5)  # C = 1/2n Σ‖y − a‖²
    ref.backward()
    assert abs(value - ref.item()) < 1e-5
    assert abs(value - t.nn.functional.mse_loss(ta, t.from_numpy(y)).item() * 3 / 2) < 1e-5
    close(grad, ta.grad.numpy())


def test_binary_cross_entropy_matches_torch(xp):
    t = torch()
    a = RNG.uniform(0.05, 0.95, size=(5, 3)).astype(np.float32)
    y = RNG.integers(0, 2, size=(5, 3)).astype(np.float32)
    value, grad = gn.losses.BinaryCrossEntropy()(xp.asarray(a), xp.asarray(y))
    ta = t.from_numpy(a).requires_grad_()
    ref = t.nn.functional.binary_cross_entropy(ta, t.from_numpy(y), reduction="sum") / 5
    ref.backward()
    assert abs(value - ref.item()) < 1e-5
    close(grad, ta.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_cross_entropy_is_stable_for_huge_logits(xp):
    z = xp.asarray(np.array([[1e4, 0, -1e4], [-3e4, 3e4, 0]], np.float32))
    value, grad = gn.losses.CrossEntropy()(z, xp.asarray(np.array([0, 1])))
    assert value == 0.0
    assert np.isfinite(gn.backend.to_numpy(grad)).all()
    value, _ = gn.losses.CrossEntropy()(z, xp.asarray(np.array([2, 0])))
    assert value == pytest.approx((2e4 + 6e4) / 2)


def test_nan_or_inf_reaching_a_loss_is_reported(xp):
    z = RNG.normal(size=(4, 3)).astype(np.float32)
    z[1, 2] = np.nan
    with pytest.raises(FloatingPointError, match="CrossEntropy: the loss is nan.*NaN or inf"):
        gn.losses.CrossEntropy()(xp.asarray(z), xp.asarray(np.array([0, 1, 2, 0])))
    z[1, 2] = np.inf
    with pytest.raises(FloatingPointError, match="MSE: the loss is inf"):
        gn.losses.MSE()(xp.asarray(z), xp.asarray(np.zeros((4, 3), np.float32)))


def test_bad_targets_are_clear_errors():
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 5\]"):
        gn.losses.CrossEntropy()(z, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[-1, 2\]"):
        gn.losses.MSE()(z, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=r"integer labels must have shape \(4,\), got \(3,\)"):
        gn.losses.CrossEntropy()(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"MSE: target must have the shape of pred \(4, 3\)"):
        gn.losses.MSE()(z, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"pred must have shape \(N, outputs\)"):
        gn.losses.CrossEntropy()(np.zeros(3, np.float32), np.array([0]))
    with pytest.raises(ValueError, match="loss: expected"):
        gn.losses.get("hinge")


def test_labels_out_of_range_on_the_device_are_an_error_not_a_wrapped_index(xp):
    # CuPy wraps out-of-range indices where NumPy raises: calling a loss checks on both.
    z = xp.zeros((4, 3), dtype=np.float32)
    for loss in (gn.losses.CrossEntropy(), gn.losses.MSE(), gn.losses.BinaryCrossEntropy()):
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 3\]"):
            loss(z, xp.asarray(np.array([0, 1, 3, 2])))
