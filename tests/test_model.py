"""Sequential: the public contract, summary, flat buffers, save/load, devices."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.gradcheck import check_gradients
from tests.helpers import close, host


def contract_mlp(device: str = "cpu") -> gn.Sequential:
    L = gn.layers
    return gn.Sequential([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(),
                          L.Dense(128, 64), L.ReLU(), L.Dense(64, 10)], device=device)


def test_public_contract_summary_and_params():
    model = contract_mlp()
    assert model.num_params == 242762
    text = model.summary()
    assert "Total params: 242,762" in text
    assert "(None, 256)" in text and "(None, 10)" in text and "200,960" in text


def test_params_are_views_into_the_flat_buffer():
    model = contract_mlp()
    dense = model.layers[0]
    dense.params["W"][...] = 0.5
    assert np.count_nonzero(model.flat_params == 0.5) >= 784 * 256
    model.flat_params[...] = 0
    assert not host(dense.params["W"]).any()
    # replacing (rather than assigning into) a param is noticed and re-linked
    dense.params["b"] = np.ones(256, np.float32)
    model.relink_params()
    assert host(model.flat_params).sum() == 256


def test_three_layer_model_end_to_end_gradcheck(xp, device):
    L = gn.layers
    model = gn.Sequential([L.Dense(5, 6), L.Sigmoid(), L.Dense(6, 4), L.Tanh(), L.Dense(4, 3)],
                          device=device)
    x = np.random.default_rng(0).normal(size=(7, 5))
    y = np.array([0, 1, 2, 0, 1, 2, 1])
    report = check_gradients(model, x, y, loss=gn.losses.CrossEntropy())
    assert "4.Dense.W" in report and "0.Dense.b" in report


def test_save_load_roundtrip_is_bit_exact(tmp_path, device):
    model = contract_mlp(device)
    x = np.random.default_rng(1).random((32, 784), dtype=np.float32)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = gn.load_model(path, device=device)
    assert loaded.architecture() == model.architecture()
    np.testing.assert_array_equal(host(loaded.forward(x, training=False)),
                                  host(model.forward(x, training=False)))
    assert not list(tmp_path.glob("*.tmp"))


def test_load_model_refuses_pickles_and_garbage(tmp_path):
    bad = tmp_path / "evil.npz"
    np.savez(bad, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="evil.npz"):
        gn.load_model(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        gn.load_model(junk)
    with pytest.raises(FileNotFoundError):
        gn.load_model(tmp_path / "missing.npz")


def test_seed_makes_init_reproducible():
    gn.seed(7)
    a = contract_mlp().flat_params.copy()
    gn.seed(7)
    b = contract_mlp().flat_params.copy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_to_moves_between_devices():
    if not gn.gpu_available():
        pytest.skip("no usable GPU: " + gn.backend.gpu_status()[1])
    model = contract_mlp("cpu")
    x = np.random.default_rng(2).random((8, 784), dtype=np.float32)
    ref = host(model.forward(x, training=False))
    model.to("gpu")
    close(model.forward(x, training=False), ref, rtol=1e-5, atol=1e-5)
    model.to("cpu")
    close(model.forward(x, training=False), ref, rtol=1e-5, atol=1e-5)


def test_the_same_layer_instance_twice_is_refused():
    L = gn.layers
    dense, relu = L.Dense(4, 4), L.ReLU()
    with pytest.raises(ValueError, match=r"Sequential: layers\[0\] and layers\[2\] are the same "
                                         r"Dense\(.*\) instance"):
        gn.Sequential([dense, relu, dense], device="cpu")
    with pytest.raises(ValueError, match=r"layers\[1\] and layers\[3\] are the same ReLU"):
        gn.Sequential([dense, relu, L.Dense(4, 4), relu], device="cpu")


def test_train_step_is_gradients_then_reduction_then_one_optimizer_step():
    L = gn.layers
    model = gn.Sequential([L.Dense(4, 3)], device="cpu")
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.5))
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    seen = []

    def halve(flat_grads):  # what a data-parallel helper would do: change them in place
        seen.append(flat_grads.copy())
        flat_grads *= 0.5

    model.reduce_gradients = halve
    before = model.flat_params.copy()
    out, loss = model.train_step(x, y)
    model.reduce_gradients = gn.Sequential.reduce_gradients.__get__(model)
    ref = gn.Sequential([L.Dense(4, 3)], device="cpu")
    ref.flat_params[...] = before
    ref.compile(loss="crossentropy", optimizer="sgd")
    ref_out, ref_loss = ref.compute_gradients(x, y)
    close(seen[0], ref.flat_grads, rtol=1e-6)
    close(model.flat_params, before - 0.5 * 0.5 * ref.flat_grads, rtol=1e-6, atol=1e-7)
    close(out, ref_out, rtol=1e-6)
    assert float(loss) == pytest.approx(float(ref_loss))


def test_a_reduction_hook_returning_false_skips_the_update():
    """The hook's veto: data-parallel training skips a step on every process this way."""
    model = gn.Sequential([gn.layers.Dense(4, 3)], device="cpu")
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.5))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    before = model.flat_params.copy()
    model.reduce_gradients = lambda flat_grads: False
    _, loss = model.train_step(x, y)
    assert np.isfinite(float(loss))
    np.testing.assert_array_equal(model.flat_params, before)
    model.reduce_gradients = lambda flat_grads: True  # anything but False: the step runs
    model.train_step(x, y)
    assert not np.array_equal(model.flat_params, before)


def test_a_non_finite_loss_gets_no_step_on_the_cpu():
    model = gn.Sequential([gn.layers.Dense(2, 2)], device="cpu")
    model.compile(loss="mse", optimizer="sgd")
    before = model.flat_params.copy()
    _, loss = model.train_step(np.array([[np.inf, 1.0]], np.float32), np.array([0]))
    assert not np.isfinite(float(loss))
    np.testing.assert_array_equal(model.flat_params, before)


def test_replica_shares_parameters_and_owns_gradients():
    model = contract_mlp()
    twin = model.replica()
    assert twin.flat_params is model.flat_params and twin.flat_grads is not model.flat_grads
    assert twin.layers[0].params["W"] is model.layers[0].params["W"]
    assert np.shares_memory(twin.layers[0].grads["W"], twin.flat_grads)
    assert model.replica(gradients=False).flat_grads is None


def test_input_shape_takes_numpy_integers_and_refuses_the_rest(tmp_path):
    model = gn.Sequential([gn.layers.Flatten(), gn.layers.Dense(4, 2)], device="cpu",
                          input_shape=(np.int64(1), np.int32(2), np.int64(2)))
    assert model.input_shape == (1, 2, 2) and type(model.input_shape[0]) is int
    model.save(tmp_path / "m.npz")  # JSON: Python ints only
    assert gn.load_model(tmp_path / "m.npz").input_shape == (1, 2, 2)
    for bad in (5, (0, 2), (2.0,), "28x28"):
        with pytest.raises(ValueError, match="Sequential: input_shape must be a tuple of "
                                             "positive ints"):
            gn.Sequential([gn.layers.Dense(4, 2)], device="cpu", input_shape=bad)


def test_save_refuses_non_finite_weights_naming_the_entry(tmp_path):
    model = gn.Sequential([gn.layers.Dense(3, 2), gn.layers.ReLU(), gn.layers.Dense(2, 2)],
                          device="cpu")
    model.layers[2].params["b"][1] = np.inf
    with pytest.raises(ValueError, match=r"layer2\.b holds NaN or inf"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
