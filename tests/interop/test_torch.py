"""gpunet ↔ PyTorch: the reference models and an nn.Sequential of every layer kind translated
both ways, with identical predictions; layouts (Linear (out, in), NCHW flatten order) checked."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.interop import torch as bridge
from tests.interop.helpers import inputs, reference_models

torch = pytest.importorskip("torch")
nn = torch.nn


def torch_out(module, x: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.argmax(axis=1), b.argmax(axis=1))


@pytest.mark.parametrize("name", ["mlp", "cnn", "every_kind"])
def test_to_torch_predicts_what_gpunet_predicts(name):
    model = reference_models()[name]
    for n in (1, 37):
        x = inputs(model, n, seed=n)
        assert_same(torch_out(gn.interop.to_torch(model), x), model.predict(x, workers=1))


@pytest.mark.parametrize("name", ["mlp", "cnn", "every_kind"])
def test_round_trip_through_torch_gives_the_same_weights(name):
    model = reference_models()[name]
    back = gn.interop.from_torch(gn.interop.to_torch(model), input_shape=model.input_shape,
                                 device="cpu")
    assert back.architecture()["layers"] == model.architecture()["layers"]
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(back.get_weights()[key], value)


def torch_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def torch_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(20, 40, 5),
                         nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(640, 100),
                         nn.ReLU(), nn.Dropout(0.2), nn.Linear(100, 10))


def torch_every_kind() -> nn.Sequential:
    """Every kind, nested, with a 'same' padded conv, a bias-free Linear and an LPPool2d."""
    lp = [nn.LPPool2d(2, 2, stride=1)] if hasattr(gn.layers, "L2Pool2D") else []
    features = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(4, 6, 3, padding="same"), nn.Tanh(), nn.AvgPool2d(2, stride=1), nn.Sigmoid(),
        *lp, nn.Dropout(0.3))
    n = 6 * (4 if lp else 5) ** 2
    return nn.Sequential(features, nn.Flatten(), nn.Linear(n, 16, bias=False), nn.ReLU(),
                         nn.Linear(16, 10), nn.Softmax(dim=1))


@pytest.mark.parametrize("make", [torch_mlp, torch_cnn, torch_every_kind])
def test_from_torch_predicts_what_torch_predicts(make):
    torch.manual_seed(0)
    module = make()
    shape = (784,) if make is torch_mlp else (1, 28, 28)
    model = gn.interop.from_torch(module, input_shape=shape, device="cpu")
    for n in (1, 37):
        x = np.random.default_rng(n).random((n, *shape), dtype=np.float32)
        assert_same(model.predict(x, workers=1), torch_out(module, x))
    again = gn.interop.to_torch(model)
    x = np.random.default_rng(5).random((4, *shape), dtype=np.float32)
    assert_same(torch_out(again, x), torch_out(module, x))


def test_dense_weight_is_transposed_and_flatten_keeps_chw_order():
    """Layouts spelled out: Linear.weight is Dense.W transposed, and the first Dense after a
    convolution sees features in (C, H, W) order in both libraries."""
    model = reference_models()["cnn"]
    module = gn.interop.to_torch(model)
    np.testing.assert_array_equal(module[7].weight.detach().numpy(),
                                  model.layers[7].params["W"].T)
    x = inputs(model, 2)
    flat = x
    for layer in model.layers[:7]:  # up to and including Flatten
        flat = layer.forward(flat, training=False)
    assert flat.shape == (2, 640)
    np.testing.assert_allclose(flat, torch_out(module[:7], x), atol=1e-5)


@pytest.mark.parametrize("module, message", [
    (nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), r"module 1 BatchNorm1d\(2.*no gpunet"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), "groups=1, dilation=1"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), "groups=1, dilation=1"),
    (nn.Sequential(nn.Conv2d(1, 2, 4, padding="same")), "even kernel pads unevenly"),
    (nn.Sequential(nn.MaxPool2d(2, padding=1)), "without padding"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), "floors the output size"),
    (nn.Sequential(nn.Flatten(0)), "start_dim=1"),
    (nn.Sequential(nn.Softmax(dim=0)), "dim=1"),
])
def test_modules_gpunet_cannot_express_are_refused_by_name(module, message):
    with pytest.raises(ValueError, match=message):
        gn.interop.from_torch(module)


def test_from_torch_takes_only_sequential_and_to_torch_names_unknown_layers():
    with pytest.raises(TypeError, match="expected a torch.nn.Sequential, got Linear"):
        gn.interop.from_torch(nn.Linear(2, 2))

    class Doubler(gn.layers.Layer):
        def forward(self, x, training=True):
            return 2 * x

        def backward(self, dy):
            return 2 * dy

    model = gn.Sequential([gn.layers.Dense(2, 2), Doubler()], device="cpu")
    with pytest.raises(ValueError, match=r"layer 1 Doubler\(\) has no PyTorch translation"):
        gn.interop.to_torch(model)


def test_every_registered_layer_class_translates_both_ways():
    classes = set(gn.layers.registry())
    assert classes <= set(bridge.TO_TORCH)
    translated = {type(layer).__name__ for layer in gn.interop.from_torch(
        torch_every_kind(), input_shape=(1, 28, 28), device="cpu").layers}
    assert translated == classes


def test_from_torch_leaves_the_torch_module_and_gpunet_rng_alone():
    module = torch_mlp()
    before = module[0].weight.detach().clone()
    state = gn.backend.get_rng_state()
    model = gn.interop.from_torch(module, device="cpu")
    assert gn.backend.get_rng_state() == state
    model.layers[0].params["W"][...] = 0
    assert torch.equal(module[0].weight.detach(), before)
