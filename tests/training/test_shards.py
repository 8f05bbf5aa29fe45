"""CPU data parallelism: sharded steps give the batch's gradient, stay reproducible, and hold
BLAS to one thread only while they run."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gpunet as gn
from gpunet.training.shards import Shards, blas_threads, resolve_workers
from tests.helpers import close, host

L = gn.layers


def small_cnn(dropout: float = 0.0, device: str = "cpu") -> gn.Sequential:
    layers = [L.Conv2D(1, 3, 3), L.MaxPool2D(2), L.ReLU(), L.Flatten(), L.Dense(3 * 4 * 4, 5)]
    if dropout:
        layers.insert(4, L.Dropout(dropout))
    model = gn.Sequential(layers, device=device, input_shape=(1, 10, 10))
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.1, momentum=0.9),
                  metrics=["accuracy"])
    return model


def images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 10, 10)).astype(np.float32)
    return x, (x[:, 0, :5].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, 5:, :5].sum(
        axis=(1, 2)) > 0)


def plain_step(model: gn.Sequential, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    out = model.forward(x, training=True)
    loss, grad = model.loss.forward(out, y)
    model.backward(grad)
    return host(out), float(loss)


@pytest.mark.parametrize("workers,n", [(2, 8), (2, 7), (3, 10), (4, 3)])
def test_sharded_step_gives_the_batch_gradient(workers, n):
    model = small_cnn()
    x, y = images(n)
    out, loss = plain_step(model, x, y)
    expected = model.flat_grads.copy()
    model.flat_grads[...] = 123.0  # a sharded step must overwrite, not add to, old gradients
    with Shards(model, workers) as shards:
        out_s, loss_s = shards.compute_gradients(x, y)
    close(out_s, out, rtol=1e-5, atol=1e-6)
    assert float(loss_s) == pytest.approx(loss, rel=1e-6)
    close(model.flat_grads, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 0  # the check compares real gradients


def test_replicas_share_parameters_but_not_gradients():
    model = small_cnn()
    shards = Shards(model, 2)
    shards.close()
    replica = shards.replicas[1]
    assert isinstance(replica, gn.Sequential) and replica.flat_params is model.flat_params
    for main, copy in zip(model.layers, replica.layers, strict=True):
        for k in main.params:
            assert copy.params[k] is main.params[k]
            assert not np.shares_memory(copy.grads[k], main.grads[k])
            assert np.shares_memory(copy.grads[k], replica.flat_grads)


def test_inference_replicas_allocate_no_gradients():
    model = small_cnn()
    shards = Shards(model, 3, training=False)
    x, y = images(6)
    try:
        close(shards.predict_step(x), model.forward(x, training=False), rtol=1e-6)
        with pytest.raises(RuntimeError, match="training=False, for inference only"):
            shards.compute_gradients(x, y)
    finally:
        shards.close()
    for replica in shards.replicas[1:]:
        assert replica.flat_grads is None
        for main, copy in zip(model.layers, replica.layers, strict=True):
            for k in main.params:
                assert copy.params[k] is main.params[k] and copy.grads[k] is main.grads[k]


def test_sharded_dropout_is_reproducible_with_a_seed():
    x, y = images(16)
    grads = []
    for _ in range(2):
        gn.seed(7)
        model = small_cnn(dropout=0.5)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, workers=2)
        grads.append(host(model.flat_params).copy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_fit_with_workers_learns_like_one_worker():
    x, y = images(256)
    logs = {}
    for workers in (1, 2):
        gn.seed(3)
        model = small_cnn()
        hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0, workers=workers)
        logs[workers] = hist.history["loss"]
    np.testing.assert_allclose(logs[2], logs[1], rtol=1e-5)
    assert logs[2][-1] < logs[2][0]


def test_blas_runs_single_threaded_only_inside_fit():
    seen = []

    class Probe(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(blas_threads())

    x, y = images(32)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        small_cnn().fit(x, y, epochs=1, batch_size=16, verbose=0, workers=2, callbacks=[Probe()])
        assert blas_threads() == before
    assert seen and set(seen) == {1}


def test_evaluate_and_predict_with_workers_match_one_worker():
    model = small_cnn()
    x, y = images(50)
    close(model.predict(x, batch_size=16, workers=3), model.predict(x, workers=1), rtol=1e-6)
    a, b = model.evaluate(x, y, workers=2), model.evaluate(x, y, workers=1)
    assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-6)


def test_auto_shards_conv_models_only():
    mlp = gn.Sequential([L.Dense(4, 3)], device="cpu")
    assert resolve_workers(mlp, "auto", "fit", 128) == 1
    with threadpool_limits(limits=4, user_api="blas"):
        assert blas_threads() == 4
        assert resolve_workers(small_cnn(), "auto", "fit", 1024) == 4
        assert resolve_workers(small_cnn(), "auto", "fit", 64) == 2  # shards of >= 32 samples
        assert resolve_workers(small_cnn(), "auto", "fit", 40) == 1
    assert resolve_workers(mlp, 3, "fit", 8) == 3  # an explicit count is taken as given


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "two"])
def test_bad_workers_are_named(bad):
    x, y = images(4)
    with pytest.raises(ValueError, match=r"fit: workers must be a positive int or 'auto', "
                                         rf"got {bad!r}"):
        small_cnn().fit(x, y, verbose=0, workers=bad)
    with pytest.raises(ValueError, match="predict: workers"):
        small_cnn().predict(x, workers=bad)


@pytest.mark.gpu
def test_workers_on_the_gpu():
    usable, reason = gn.backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    model = small_cnn(device="gpu")
    assert resolve_workers(model, "auto", "fit", 128) == 1
    x, y = images(4)
    with pytest.raises(ValueError, match="workers=2 splits batches across CPU threads"):
        model.fit(x, y, verbose=0, workers=2)
