"""gradcheck: drives a float64 copy of the model, leaves the user's generators alone, and
catches a wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from gpunet.gradcheck import GradientCheckError, check_gradients

L = gn.layers


def dropout_model() -> gn.Sequential:
    return gn.Sequential([L.Dense(4, 5), L.Dropout(0.5), L.Tanh(), L.Dense(5, 3)], device="cpu")


def test_a_model_with_dropout_checks_and_the_users_generator_does_not_move():
    model = dropout_model()
    x = np.random.default_rng(0).normal(size=(6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    gn.seed(21)
    state = backend.get_rng_state()
    before = model.flat_params.copy()
    report = check_gradients(model, x, y, loss=gn.losses.CrossEntropy())
    assert backend.get_rng_state() == state
    np.testing.assert_array_equal(model.flat_params, before)  # the model itself is untouched
    assert set(report) == {"x", "0.Dense.W", "0.Dense.b", "3.Dense.W", "3.Dense.b"}
    assert model.flat_params.dtype == np.float32 and backend.floatx() == np.float32


def test_a_wrong_model_gradient_is_caught(monkeypatch):
    model = dropout_model()
    x = np.random.default_rng(1).normal(size=(4, 4))
    y = np.array([0, 1, 2, 0])
    real = L.Tanh.backward
    monkeypatch.setattr(L.Tanh, "backward", lambda self, dy: real(self, dy) * 1.01)
    with pytest.raises(GradientCheckError, match="analytic .* vs numeric"):
        check_gradients(model, x, y, loss=gn.losses.CrossEntropy())


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="a model needs `y` and `loss`"):
        check_gradients(dropout_model(), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="target must be a Layer, Loss or Sequential"):
        check_gradients(print, np.zeros((2, 4)))
