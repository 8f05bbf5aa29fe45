"""ONNX export, run by onnxruntime on the CPU against `model.predict`."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.interop import onnx as export
from tests.interop.helpers import every_kind, inputs, mnist_test, reference_models

onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'gpunet[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="needs pip install 'gpunet[onnx]'")

MODELS = reference_models()


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name → (model, onnxruntime session of its exported file)."""
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    for name, model in MODELS.items():
        model.export(folder / f"{name}.onnx", format="onnx")
        out[name] = (model, session(folder / f"{name}.onnx"))
    return out


def agree(model: gn.Sequential, sess: ort.InferenceSession, x: np.ndarray) -> None:
    got = sess.run(None, {"input": x})[0]
    want = model.predict(x, workers=1)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4
    np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("batch", [1, 37])
def test_onnxruntime_matches_predict_on_random_inputs(exported, name, batch):
    model, sess = exported[name]
    agree(model, sess, inputs(model, batch, seed=batch))


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_matches_predict_on_the_mnist_test_images(exported, name):
    model, sess = exported[name]
    x = mnist_test(model)
    assert len(x) == 10_000
    agree(model, sess, x)


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_is_checked_opset_17_with_a_dynamic_batch_axis(exported, tmp_path, name):
    model, _ = exported[name]
    proto = export.to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] >= 17
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and not dims[0].HasField("dim_value")
    assert [d.dim_value for d in dims[1:]] == list(model.input_shape)
    assert {i.name for i in proto.graph.initializer} == set(model.get_weights())


def test_every_registered_layer_class_has_an_exporter_and_is_tested():
    """A layer added to gpunet.layers must get an exporter and a place in `every_kind`."""
    classes = set(gn.layers.registry())
    assert classes <= set(export.EXPORTERS)
    assert {type(layer).__name__ for layer in every_kind().layers} == classes


def test_dropout_is_the_identity_and_exported_weights_are_the_model_s(exported):
    model, _ = exported["cnn"]
    proto = export.to_onnx(model)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Identity") == 2 and "Dropout" not in ops  # the dropout and the output
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(weights[key], value)


class Doubler(gn.layers.Layer):
    def forward(self, x, training=True):
        return 2 * x

    def backward(self, dy):
        return 2 * dy


def test_a_layer_without_an_exporter_is_named_and_nothing_is_written(tmp_path):
    model = gn.Sequential([gn.layers.Dense(4, 3), Doubler()], device="cpu")
    with pytest.raises(export.ExportError, match=r"layer 1 Doubler\(\) has no ONNX exporter"):
        model.export(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_other_formats_and_old_opsets(tmp_path):
    model = MODELS["mlp"]
    with pytest.raises(ValueError, match="format must be 'onnx', got 'tflite'"):
        model.export(tmp_path / "m.tflite", format="tflite")
    with pytest.raises(export.ExportError, match="opset must be >= 17, got 13"):
        export.to_onnx(model, opset=13)


def test_conv_model_without_input_shape_exports_with_free_height_and_width(tmp_path):
    L = gn.layers
    model = gn.Sequential([L.Conv2D(2, 3, 3, padding=1), L.ReLU(), L.AvgPool2D(2)], device="cpu")
    assert model.input_shape is None
    gn.interop.export_onnx(model, tmp_path / "m.onnx")
    sess = session(tmp_path / "m.onnx")
    for hw in ((8, 8), (7, 11)):
        x = np.random.default_rng(1).standard_normal((3, 2, *hw)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], model.predict(x, workers=1),
                                   atol=1e-5)
