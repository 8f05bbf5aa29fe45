"""Architecture and weight checks that need no layer built (used by safetensors loading)."""

from __future__ import annotations

import pytest

import gpunet as gn
from gpunet.interop import validate
from gpunet.reference_models import cnn


def test_the_cnn_s_own_architecture_and_weights_pass():
    model = cnn(device="cpu")
    arch = model.architecture()
    validate.check_architecture(arch, "m")
    validate.check_weights(arch, {k: tuple(v.shape) for k, v in model.get_weights().items()},
                           "m")


def test_expected_shapes_come_from_the_config_alone():
    conv = {"class": "Conv2D", "config": {"in_channels": 3, "out_channels": 8,
                                          "kernel_size": [5, 3]}}
    assert validate.expected_shapes(conv, "m") == {"W": (8, 3, 5, 3), "b": (8,)}
    assert validate.expected_shapes({"class": "MaxPool2D", "config": {}}, "m") == {}
    with pytest.raises(ValueError, match="m: in_channels must be a positive int, got 0"):
        validate.expected_shapes({**conv, "config": {**conv["config"], "in_channels": 0}}, "m")


def test_every_registered_class_with_parameters_has_its_shapes_known():
    """A layer class added later with parameters needs PARAM_SHAPES or `param_shapes`, or its
    weights are checked only after it is built."""
    for name in gn.layers.registry():
        assert name in validate.NO_PARAMS or name in validate.PARAM_SHAPES or \
            hasattr(gn.layers.registry()[name], "param_shapes"), name


def test_a_class_may_declare_its_own_shapes(monkeypatch):
    class Scale(gn.layers.Layer):
        @staticmethod
        def param_shapes(config):
            return {"s": [config["n"]]}

        def __init__(self, n):
            super().__init__()

        def forward(self, x, training=True):
            return x

        def backward(self, dy):
            return dy

    monkeypatch.setattr(validate, "registry", lambda: {"Scale": Scale})
    arch = {"layers": [{"class": "Scale", "config": {"n": 4}}]}
    validate.check_architecture(arch, "m")
    validate.check_weights(arch, {"layer0.s": (4,)}, "m")
    with pytest.raises(ValueError, match=r"layer0.s has shape \(5,\), the architecture declares"):
        validate.check_weights(arch, {"layer0.s": (5,)}, "m")
    with pytest.raises(ValueError, match="layer 0 Scale config .*missing a required argument: 'n'"):
        validate.check_architecture({"layers": [{"class": "Scale", "config": {"m": 1}}]}, "m")
