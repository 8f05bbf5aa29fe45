"""The Layer base class's checks, for every layer kind: a wrong-sized dy given to `backward` is
one ValueError naming the layer and both shapes (never a NumPy matmul or broadcast error), and a
backward with no training forward before it is one RuntimeError."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gpunet as gn
from tests.helpers import host

L = gn.layers
IMAGE, FEATURES = (2, 3, 6, 6), (4, 5)
# name -> (layer factory, input shape); every class of the layer registry has a case
CASES = {
    "Dense": (lambda: L.Dense(5, 3), FEATURES),
    "ReLU": (L.ReLU, FEATURES),
    "ReLU on images": (L.ReLU, IMAGE),
    "LeakyReLU": (lambda: L.LeakyReLU(0.1), FEATURES),
    "Sigmoid": (L.Sigmoid, FEATURES),
    "Tanh": (L.Tanh, IMAGE),
    "Softmax": (L.Softmax, FEATURES),
    "Dropout": (lambda: L.Dropout(0.5), FEATURES),
    "Dropout(0)": (lambda: L.Dropout(0.0), IMAGE),
    "Flatten": (L.Flatten, IMAGE),
    "Conv2D": (lambda: L.Conv2D(3, 4, 3, padding=1), IMAGE),
    "Conv2D rows": (lambda: L.Conv2D(3, 2, (4, 3), stride=2), IMAGE),  # K = 36 > FEW_ROWS
    "Conv2D reference": (lambda: _reference(L.Conv2D(3, 4, 3)), IMAGE),
    "MaxPool2D": (lambda: L.MaxPool2D(2), IMAGE),
    "AvgPool2D": (lambda: L.AvgPool2D(3, 1), IMAGE),
    "L2Pool2D": (lambda: L.L2Pool2D(2, 1), IMAGE),
}


def _reference(conv):
    conv.use_cpu_override = False
    return conv


def _wrong_shapes(shape):
    """dy shapes a caller could plausibly pass by mistake."""
    n, *rest = shape
    wrong = [(n + 1, *rest),  # another batch size
             (*shape[:-1], shape[-1] + 1),  # another width
             (n, int(np.prod(rest))),  # flattened (images)
             (*shape, 1),  # an extra axis
             tuple(rest)]  # no batch axis
    return [s for s in wrong if s != shape]


def test_every_layer_kind_has_a_case():
    assert {name.split()[0].split("(")[0] for name in CASES} == set(L.registry())


@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_wrong_sized_dy_is_one_clear_error(xp, name, input_grad):
    make, in_shape = CASES[name]
    layer = make().to(xp)
    layer.input_grad = input_grad
    x = xp.asarray(np.random.default_rng(0).normal(size=in_shape).astype(np.float32))
    y = layer.forward(x)
    for shape in _wrong_shapes(tuple(y.shape)):
        message = (rf"^{re.escape(repr(layer))}: dy must have the output's shape "
                   rf"{re.escape(str(tuple(y.shape)))}, got {re.escape(str(shape))}$")
        with pytest.raises(ValueError, match=message):
            layer.backward(xp.zeros(shape, dtype=xp.float32))
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        layer.backward(host(y).tolist()[:-1])  # a nested list one sample short
    dx = layer.backward(xp.ones(y.shape, dtype=xp.float32))  # the right shape still works
    if input_grad:
        assert dx.shape == in_shape
    elif layer.params:  # Dense, Conv2D: a model's first layer computes no input gradient
        assert dx is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_without_a_training_forward_is_one_clear_error(xp, name):
    make, in_shape = CASES[name]
    layer = make().to(xp)
    out_shape = (in_shape[0], *layer.output_shape(in_shape[1:]))
    dy = xp.ones(out_shape, dtype=xp.float32)
    pattern = rf"^{re.escape(repr(layer))}: backward called without a forward\(training=True\)"
    with pytest.raises(RuntimeError, match=pattern):
        layer.backward(dy)  # no forward at all
    layer.forward(xp.ones(in_shape, dtype=xp.float32), training=False)
    with pytest.raises(RuntimeError, match=pattern):
        layer.backward(dy)  # an inference forward keeps nothing for backward


def test_dy_is_cast_to_the_layers_float_type(xp):
    layer = L.Dense(5, 3).to(xp)
    x = xp.asarray(np.ones(FEATURES, dtype=np.float32))
    layer.forward(x)
    dx = layer.backward(xp.ones((4, 3), dtype=xp.float64))
    assert dx.dtype == np.float32 and layer.grads["W"].dtype == np.float32
