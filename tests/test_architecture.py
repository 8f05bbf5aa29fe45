"""The architecture and weight checks both model formats share, judged without building a layer."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import layers as L
from gpunet.architecture import (
    PARAM_SHAPES,
    build,
    check_entries,
    declared_weights,
    expected_weights,
    layer_specs,
)
from gpunet.reference_models import cnn
from gpunet.serialization import FileFormatError

SAMPLES = {  # one small instance of every registered layer class
    "Dense": lambda: L.Dense(3, 4), "Conv2D": lambda: L.Conv2D(2, 3, (3, 2), stride=2, padding=1),
    "MaxPool2D": lambda: L.MaxPool2D(2), "AvgPool2D": lambda: L.AvgPool2D(2),
    "Flatten": L.Flatten, "Dropout": lambda: L.Dropout(0.5), "ReLU": L.ReLU,
    "LeakyReLU": L.LeakyReLU, "Sigmoid": L.Sigmoid, "Tanh": L.Tanh, "Softmax": L.Softmax,
    "L2Pool2D": lambda: L.L2Pool2D(2),
}


def test_param_shape_table_matches_every_registered_layer():
    registry = L.registry()
    assert set(SAMPLES) == set(registry), "a new layer class: add it to SAMPLES and, if it " \
                                          "has parameters, to gpunet.architecture.PARAM_SHAPES"
    for name in registry:
        layer = SAMPLES[name]()
        real = {k: tuple(p.shape) for k, p in layer.params.items()}
        table = PARAM_SHAPES[name](layer.get_config()) if name in PARAM_SHAPES else {}
        assert table == real, name


def headers(model):
    """The model's weights as a file's entries: name -> (shape, dtype), and the lookup."""
    shapes = {k: (tuple(v.shape), np.dtype(v.dtype)) for k, v in model.get_weights().items()}
    return shapes, shapes.__getitem__


def test_the_cnn_s_own_architecture_and_weights_pass():
    model = cnn(device="cpu")
    specs, wanted = declared_weights("m", {"architecture": model.architecture()})
    assert [cls for cls, _ in specs] == [type(layer).__name__ for layer in model.layers]
    shapes, header = headers(model)
    check_entries("m", wanted, shapes, header)
    assert wanted == {k: shape for k, (shape, _) in shapes.items()}


def test_expected_shapes_come_from_the_config_alone():
    conv = ("Conv2D", {"in_channels": 3, "out_channels": 8, "kernel_size": [5, 3]})
    assert expected_weights("m", [conv, ("MaxPool2D", {"pool_size": 2})]) == {
        "layer0.W": (8, 3, 5, 3), "layer0.b": (8,)}
    with pytest.raises(FileFormatError,
                       match=r"m: layer 1 \(Conv2D\): config: in_channels must be a positive "
                             r"int, got 0"):
        expected_weights("m", [("ReLU", {}), (conv[0], {**conv[1], "in_channels": 0})])
    with pytest.raises(FileFormatError, match=r"layer 0 \(Conv2D\): .*kernel_size must be"):
        expected_weights("m", [(conv[0], {**conv[1], "kernel_size": [5, 0]})])


def test_a_config_the_constructor_does_not_accept_is_refused_before_building():
    arch = {"layers": [{"class": "Dense", "config": {"in_features": 2}}]}
    with pytest.raises(FileFormatError, match=r"m: layer 0 \(Dense\) cannot be built from its "
                                              r"config .*missing a required argument"):
        layer_specs("m", arch)
    with pytest.raises(FileFormatError, match="layer 0 of the architecture must be"):
        layer_specs("m", {"layers": [{"class": ["Dense"], "config": {}}]})  # not a str


def test_entries_must_be_exactly_the_declared_weights():
    model = cnn(device="cpu")
    _, wanted = declared_weights("m", {"architecture": model.architecture()})
    shapes, _ = headers(model)
    cases = {
        "missing": ({k: v for k, v in shapes.items() if k != "layer0.b"},
                    r"but 1 are missing: layer0.b of shape \("),
        "undeclared": ({**shapes, "extra": ((1,), np.dtype("f4"))},
                       "does not declare: extra"),
        "misshapen": ({**shapes, "layer0.b": ((1,), np.dtype("f4"))},
                      r"entry 'layer0.b' is \(1,\) of float32; the architecture declares "
                      r"floating point of shape"),
        "integer": ({**shapes, "layer0.b": (shapes["layer0.b"][0], np.dtype("i4"))},
                    "entry 'layer0.b' is .* of int32"),
    }
    for entries, message in cases.values():
        with pytest.raises(FileFormatError, match=message):
            check_entries("m", wanted, entries, entries.__getitem__)


def test_building_leaves_the_global_rng_alone():
    from gpunet import backend

    specs = layer_specs("m", cnn(device="cpu").architecture())
    before = backend.get_rng_state()
    assert len(build("m", specs)) == len(specs)
    assert backend.get_rng_state() == before
