"""Conv2D: finite differences, then PyTorch CPU as the independent oracle; errors; a small CNN."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet as gn
from gpunet.gradcheck import check_gradients
from gpunet.layers import _conv_blocked as cg
from gpunet.reference_models import cnn
from tests.helpers import close, host, torch

# (in_channels, out_channels, kernel_size, stride, padding, (H, W))
CASES = [
    (2, 3, 3, 1, 0, (6, 6)),
    (2, 3, 3, 2, 1, (7, 6)),
    (3, 2, (3, 2), 1, (1, 0), (5, 6)),
    (3, 4, 1, 1, 0, (4, 4)),
    (1, 2, (2, 3), (2, 1), 0, (7, 7)),
    (2, 2, 4, 3, 2, (5, 8)),
    # K = C·kh·kw > FEW_ROWS: on NumPy the columns are remade a few output rows at a time
    (4, 3, 3, 2, 1, (9, 8)),
    (5, 2, (3, 4), 1, (1, 2), (6, 7)),
]


@pytest.fixture(params=["reference", "blocked, one row per block", "blocked"])
def path(request, monkeypatch):
    """Run a test on the reference path, on the blocked CPU override with one output row per
    block (so stride and padding cross block edges), and on the override as it ships. On CuPy
    every Conv2D runs the reference path."""
    if request.param == "reference":
        monkeypatch.setattr(gn.layers.Conv2D, "use_cpu_override", False)
    elif request.param == "blocked, one row per block":
        monkeypatch.setattr(cg, "ROW_BLOCK_BYTES", 1)
        monkeypatch.setattr(cg, "BLOCK_BYTES", 1)


def _on(layer, xp):
    return layer.to(xp)


@pytest.mark.parametrize("cin,cout,k,s,p,hw", CASES)
def test_conv_gradcheck(xp, path, cin, cout, k, s, p, hw):
    x = xp.asarray(np.random.default_rng(0).normal(size=(2, cin, *hw)))
    layer = _on(gn.layers.Conv2D(cin, cout, k, stride=s, padding=p), xp)
    layer.params["b"][...] = xp.asarray(np.random.default_rng(1).normal(size=cout))
    report = check_gradients(layer, x)
    assert set(report) == {"x", "W", "b"}


# The last one has few rows of columns (K = 26) and 2,436 columns: the blocked GEMMs, with a
# remainder block.
@pytest.mark.parametrize("cin,cout,k,s,p,hw", [*CASES, (1, 4, 5, 1, 0, (32, 33))])
def test_conv_matches_torch(xp, path, cin, cout, k, s, p, hw):
    t = torch()
    rng = np.random.default_rng(2)
    layer = _on(gn.layers.Conv2D(cin, cout, k, stride=s, padding=p), xp)
    layer.params["b"][...] = xp.asarray(rng.normal(size=cout))
    x = rng.normal(size=(3, cin, *hw)).astype(np.float32)
    tx = t.from_numpy(x).requires_grad_()
    tw = t.from_numpy(host(layer.params["W"]).copy()).requires_grad_()
    tb = t.from_numpy(host(layer.params["b"]).copy()).requires_grad_()
    ty = t.nn.functional.conv2d(tx, tw, tb, stride=layer.stride, padding=layer.padding)
    dy = rng.normal(size=tuple(ty.shape)).astype(np.float32)
    ty.backward(t.from_numpy(dy))
    y = layer.forward(xp.asarray(x))
    assert y.shape == tuple(ty.shape) and y.dtype == np.float32
    dx = layer.backward(xp.asarray(dy))
    close(y, ty.detach().numpy())
    close(dx, tx.grad.numpy())
    close(layer.grads["W"], tw.grad.numpy())
    close(layer.grads["b"], tb.grad.numpy())
    assert layer.output_shape((cin, *hw)) == tuple(ty.shape[1:])


@pytest.mark.parametrize("cin,cout,k,s,p,hw", [*CASES, (20, 4, 5, 1, 0, (12, 12)),
                                              (8, 3, 3, 2, 1, (11, 9))])
def test_inference_forward_matches_training_forward(xp, path, cin, cout, k, s, p, hw):
    rng = np.random.default_rng(3)
    layer = _on(gn.layers.Conv2D(cin, cout, k, stride=s, padding=p), xp)
    layer.params["b"][...] = xp.asarray(rng.normal(size=cout))
    x = xp.asarray(rng.normal(size=(5, cin, *hw)).astype(np.float32))
    close(layer.forward(x, training=False), layer.forward(x, training=True), rtol=1e-5,
          atol=1e-5)


def test_input_grad_false_returns_none_and_fills_grads_in_place(xp, path):
    rng = np.random.default_rng(3)
    x = xp.asarray(rng.normal(size=(2, 2, 5, 5)))
    dy = xp.asarray(rng.normal(size=(2, 3, 3, 3)))
    full = _on(gn.layers.Conv2D(2, 3, 3, padding=0), xp)
    full.forward(x)
    assert full.backward(dy) is not None
    first = _on(gn.layers.Conv2D(2, 3, 3), xp)
    first.params["W"][...] = full.params["W"]
    first.input_grad = False
    gw, gb = first.grads["W"], first.grads["b"]
    first.forward(x)
    assert first.backward(dy) is None
    assert first.grads["W"] is gw and first.grads["b"] is gb  # written into, not rebound
    close(gw, full.grads["W"])
    close(gb, full.grads["b"])


def test_conv_rejects_bad_input_with_a_clear_message(xp):
    layer = _on(gn.layers.Conv2D(3, 4, 5), xp)
    with pytest.raises(ValueError, match=r"Conv2D\(in_channels=3.*expected input of shape "
                                         r"\(N, 3, H, W\), got \(2, 4, 8, 8\)"):
        layer.forward(xp.zeros((2, 4, 8, 8), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"Conv2D\(.*4 axes.*got shape \(3, 8, 8\)"):
        layer.forward(xp.zeros((3, 8, 8), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"Conv2D\(.*kernel_size \(5, 5\) is larger than the "
                                         r"input of shape \(1, 3, 4, 6\)"):
        layer.forward(xp.zeros((1, 3, 4, 6), dtype=xp.float32))
    padded = _on(gn.layers.Conv2D(1, 1, (7, 3), padding=1), xp)
    with pytest.raises(ValueError, match=r"kernel_size \(7, 3\).*padded to \(6, 6\)"):
        padded.forward(xp.zeros((1, 1, 4, 4), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(3, H, W\), got \(1, 8, 8\)"):
        layer.output_shape((1, 8, 8))
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is larger"):
        layer.output_shape((3, 4, 4))
    y = layer.forward(xp.zeros((2, 3, 6, 7), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 4, 2, 3\), "
                                         r"got \(2, 4, 3, 2\)"):
        layer.backward(xp.zeros((2, 4, 3, 2), dtype=xp.float32))
    assert layer.backward(xp.ones(y.shape, dtype=xp.float32)).shape == (2, 3, 6, 7)


@pytest.mark.parametrize("kwargs,arg", [
    ({"kernel_size": 0}, "kernel_size"), ({"kernel_size": (3, 3, 3)}, "kernel_size"),
    ({"kernel_size": 3, "stride": 0}, "stride"), ({"kernel_size": 3, "padding": -1}, "padding"),
    ({"kernel_size": True}, "kernel_size"), ({"kernel_size": 3, "stride": 1.5}, "stride"),
])
def test_conv_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=f"Conv2D: {arg}"):
        gn.layers.Conv2D(1, 2, **kwargs)


def test_conv_rejects_bad_channels():
    with pytest.raises(ValueError, match="Conv2D: out_channels"):
        gn.layers.Conv2D(1, 0, 3)
    with pytest.raises(ValueError, match="Conv2D: in_channels"):
        gn.layers.Conv2D(2.0, 1, 3)


def test_conv_config_init_and_cache():
    layer = gn.layers.Conv2D(4, 6, (3, 5), stride=2, padding=(1, 0))
    config = json.loads(json.dumps(layer.get_config()))
    assert config == {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 5], "stride": 2,
                      "padding": [1, 0]}
    assert gn.layers.Conv2D(**config).get_config() == config
    w = layer.params["W"]
    assert w.shape == (6, 4, 3, 5) and layer.params["b"].shape == (6,) and w.dtype == np.float32
    limit = np.sqrt(6.0 / (4 * 3 * 5))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.8 * limit and layer.num_params == 366
    layer.forward(np.zeros((1, 4, 5, 5)), training=False)
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        layer.backward(np.zeros((1, 6, 2, 1), np.float32))


def test_conv_params_are_live(xp):
    layer = _on(gn.layers.Conv2D(2, 3, 2), xp)
    layer.params["W"][...] = 0
    layer.params["b"][...] = xp.asarray([1.0, 2.0, 3.0])
    y = host(layer.forward(xp.ones((2, 2, 4, 4))))
    close(y, np.broadcast_to(np.array([1.0, 2.0, 3.0])[None, :, None, None], (2, 3, 3, 3)))


def _cnn(device):
    L = gn.layers
    return gn.Sequential([L.Conv2D(1, 3, 3, padding=1), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                          L.Dense(3 * 4 * 4, 5)], device=device, input_shape=(1, 8, 8))


def test_small_cnn_gradcheck_and_summary(device):
    rng = np.random.default_rng(5)
    model = _cnn(device)
    x = rng.normal(size=(4, 1, 8, 8))
    y = np.array([0, 3, 1, 4])
    report = check_gradients(model, x, y, loss=gn.losses.CrossEntropy())
    assert {"0.Conv2D.W", "0.Conv2D.b", "4.Dense.W", "4.Dense.b"} <= set(report)
    summary = model.summary()
    for shape in ("(None, 3, 8, 8)", "(None, 3, 4, 4)", "(None, 48)", "(None, 5)"):
        assert shape in summary
    assert "Total params: 275" in summary  # 3·9 + 3 + 48·5 + 5
    out = model.forward(x)
    model.backward(gn.losses.CrossEntropy().forward(out, y)[1])
    assert float(abs(model.flat_grads[:30]).sum()) > 0  # conv grads landed in the flat buffer


def test_small_cnn_save_load_roundtrip(tmp_path, device):
    model = _cnn(device)
    x = np.random.default_rng(6).normal(size=(2, 1, 8, 8))
    path = tmp_path / "cnn.npz"
    model.save(path)
    loaded = gn.load_model(path, device=device)
    close(loaded.forward(x, training=False), model.forward(x, training=False))


# (in_channels, out_channels, kernel_size, stride, padding, (H, W), batch): the override's
# few-rows branch (K ≤ FEW_ROWS; the last has enough columns for blocks of CHUNK) and its
# rows branch (K > FEW_ROWS), with strides 1 and 2, with and without padding
OVERRIDE_CASES = [
    (1, 4, 3, 1, 0, (8, 8), 3),
    (2, 3, 3, 2, 1, (9, 7), 2),
    (3, 5, 3, 2, 0, (10, 11), 4),
    (4, 3, 3, 2, 1, (9, 8), 3),
    (8, 6, (3, 5), 1, (2, 1), (7, 9), 2),
    (20, 8, 5, 2, 2, (12, 12), 5),
    (1, 6, 5, 1, 0, (28, 28), 9),
]


@pytest.mark.parametrize("cin,cout,k,s,p,hw,n", OVERRIDE_CASES)
@pytest.mark.parametrize("blocks", ["default blocks", "one row per block"])
def test_cpu_override_matches_the_reference_path(monkeypatch, cin, cout, k, s, p, hw, n,
                                                 blocks):
    if blocks == "one row per block":
        monkeypatch.setattr(cg, "ROW_BLOCK_BYTES", 1)
        monkeypatch.setattr(cg, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(7)
    blocked = gn.layers.Conv2D(cin, cout, k, stride=s, padding=p)
    blocked.params["b"][...] = rng.normal(size=cout)
    reference = gn.layers.Conv2D(cin, cout, k, stride=s, padding=p)
    reference.params["W"][...] = blocked.params["W"]
    reference.params["b"][...] = blocked.params["b"]
    reference.use_cpu_override = False
    assert blocked._blocked() and not reference._blocked()
    x = rng.normal(size=(n, cin, *hw)).astype(np.float32)
    close(blocked.forward(x, training=False), reference.forward(x, training=False))
    y = blocked.forward(x)
    close(y, reference.forward(x))
    dy = rng.normal(size=y.shape).astype(np.float32)
    close(blocked.backward(dy), reference.backward(dy))
    for name in ("W", "b"):
        close(blocked.grads[name], reference.grads[name], rtol=1e-4, atol=1e-4)
    blocked.input_grad = reference.input_grad = False
    blocked.forward(x)
    reference.forward(x)
    assert blocked.backward(dy) is None and reference.backward(dy) is None
    close(blocked.grads["W"], reference.grads["W"], rtol=1e-4, atol=1e-4)


def test_the_benchmark_cnn_runs_the_cpu_override(monkeypatch):
    """The cnn of scripts/train_mnist.py and the benchmark keeps the blocked path on NumPy."""
    def refuse(*_):
        raise AssertionError("the reference path ran on NumPy")

    monkeypatch.setattr(gn.layers.Conv2D, "_forward_reference", refuse)
    monkeypatch.setattr(gn.layers.Conv2D, "_backward_reference", refuse)
    model = cnn(device="cpu")
    convs = [layer for layer in model.layers if isinstance(layer, gn.layers.Conv2D)]
    assert len(convs) == 2 and all(layer._blocked() for layer in convs)
    x = np.random.default_rng(8).normal(size=(4, 1, 28, 28)).astype(np.float32)
    out = model.forward(x)
    model.backward(gn.losses.CrossEntropy().forward(out, np.array([0, 1, 2, 3]))[1])
    assert all(float(np.abs(layer.grads["W"]).sum()) > 0 for layer in convs)


def test_reference_bias_gradient_is_the_sum_of_dy():
    """BP3 written out: ∂C/∂b_f = Σ over batch and positions of dy[:, f]."""
    layer = gn.layers.Conv2D(2, 3, 3, stride=2, padding=1)
    layer.use_cpu_override = False
    rng = np.random.default_rng(9)
    y = layer.forward(rng.normal(size=(4, 2, 7, 7)).astype(np.float32))
    dy = rng.normal(size=y.shape).astype(np.float32)
    layer.backward(dy)
    close(layer.grads["b"], dy.sum(axis=(0, 2, 3)))
