"""Dense and activations: finite differences, then PyTorch CPU as the independent oracle."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.gradcheck import GradientCheckError, check_gradients
from tests.helpers import close, host, torch

ACTIVATIONS = [
    (gn.layers.ReLU, {}, "relu"),
    (gn.layers.LeakyReLU, {"alpha": 0.1}, "leaky_relu"),
    (gn.layers.Sigmoid, {}, "sigmoid"),
    (gn.layers.Tanh, {}, "tanh"),
    (gn.layers.Softmax, {}, "softmax"),
]


def _on(layer, xp):
    return layer.to(xp)


def test_dense_gradcheck(xp):
    rng = np.random.default_rng(0)
    report = check_gradients(_on(gn.layers.Dense(7, 5), xp), xp.asarray(rng.normal(size=(4, 7))))
    assert set(report) == {"x", "W", "b"}


@pytest.mark.parametrize("cls,kwargs,_", ACTIVATIONS)
def test_activation_gradcheck(xp, cls, kwargs, _):
    x = np.random.default_rng(1).normal(size=(5, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink, where no derivative exists
    check_gradients(_on(cls(**kwargs), xp), xp.asarray(x))


def test_activations_on_images(xp):
    x = xp.asarray(np.random.default_rng(2).normal(size=(2, 3, 4, 4)))
    for cls in (gn.layers.ReLU, gn.layers.Sigmoid, gn.layers.Tanh):
        check_gradients(_on(cls(), xp), x)


def test_gradcheck_catches_a_wrong_backward(xp):
    class Wrong(gn.layers.Tanh):
        def backward(self, dy):
            return dy  # forgets σ′

    with pytest.raises(GradientCheckError, match="analytic"):
        check_gradients(_on(Wrong(), xp), xp.asarray(np.linspace(-2, 2, 12).reshape(3, 4)))


def test_dense_matches_torch(xp):
    t = torch()
    rng = np.random.default_rng(3)
    layer = _on(gn.layers.Dense(6, 4), xp)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    dy = rng.normal(size=(5, 4)).astype(np.float32)
    layer.input_grad = True
    y = layer.forward(xp.asarray(x))
    dx = layer.backward(xp.asarray(dy))
    ref = t.nn.Linear(6, 4)
    with t.no_grad():
        ref.weight.copy_(t.from_numpy(host(layer.params["W"]).T.copy()))
        ref.bias.copy_(t.from_numpy(host(layer.params["b"])))
    tx = t.from_numpy(x).requires_grad_()
    ty = ref(tx)
    ty.backward(t.from_numpy(dy))
    close(y, ty.detach().numpy())
    close(dx, tx.grad.numpy())
    close(layer.grads["W"], ref.weight.grad.numpy().T)
    close(layer.grads["b"], ref.bias.grad.numpy())


@pytest.mark.parametrize("cls,kwargs,name", ACTIVATIONS)
def test_activation_matches_torch(xp, cls, kwargs, name):
    t = torch()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 10)).astype(np.float32)
    dy = rng.normal(size=(8, 10)).astype(np.float32)
    layer = _on(cls(**kwargs), xp)
    y = layer.forward(xp.asarray(x))
    dx = layer.backward(xp.asarray(dy))
    tx = t.from_numpy(x).requires_grad_()
    fn = {"relu": t.relu, "sigmoid": t.sigmoid, "tanh": t.tanh,
          "leaky_relu": lambda v: t.nn.functional.leaky_relu(v, 0.1),
          "softmax": lambda v: t.softmax(v, dim=1)}[name]
    ty = fn(tx)
    ty.backward(t.from_numpy(dy))
    close(y, ty.detach().numpy())
    close(dx, tx.grad.numpy())


def test_dense_rejects_wrong_shape_with_a_clear_message(xp):
    layer = _on(gn.layers.Dense(4, 3), xp)
    with pytest.raises(ValueError, match=r"Dense.*expected input of shape \(N, 4\), got \(2, 5\)"):
        layer.forward(xp.zeros((2, 5), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"Dense.*2 axes.*got shape \(2, 1, 2, 2\)"):
        layer.forward(xp.zeros((2, 1, 2, 2), dtype=xp.float32))


def test_integer_and_float64_input_is_cast_to_float32(xp):
    layer = _on(gn.layers.Dense(3, 2), xp)
    for x in (np.arange(6).reshape(2, 3), np.ones((2, 3), dtype=np.float64)):
        assert layer.forward(xp.asarray(x)).dtype == np.float32


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        gn.layers.Dense(3, 2).backward(np.zeros((1, 2), np.float32))


def test_params_are_live(xp):
    layer = _on(gn.layers.Dense(2, 2), xp)
    layer.params["W"][...] = 0
    layer.params["b"][...] = 1
    close(layer.forward(xp.ones((3, 2))), np.ones((3, 2)))


def test_dropout_scales_and_masks(xp):
    layer = _on(gn.layers.Dropout(0.25), xp)
    x = xp.ones((200, 50), dtype=xp.float32)
    y = host(layer.forward(x, training=True))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    close(layer.backward(xp.ones_like(x)), y)
    close(layer.forward(x, training=False), host(x))
    check_gradients(layer, x[:4, :5] * 0.3)


def test_flatten_roundtrip(xp):
    layer = _on(gn.layers.Flatten(), xp)
    x = xp.asarray(np.arange(48, dtype=np.float32).reshape(2, 3, 2, 4))
    y = layer.forward(x)
    assert y.shape == (2, 24)
    assert layer.backward(y).shape == (2, 3, 2, 4)
    assert layer.output_shape((3, 2, 4)) == (24,)
