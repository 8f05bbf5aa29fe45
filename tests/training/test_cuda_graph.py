"""The captured training step (gpunet.training.cuda_graph) on the CuPy stand-in with stream
capture (tests/fake_graph.py): a graph there is a recording replayed on the same memory, and
capture refuses cuBLAS, cuRAND, host↔device copies, host reads of device values and CuPy's
default pool, as CuPy 14.2 and CUDA do. Nothing here has run on a GPU."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from gpunet.kernels import _raw, _registry
from gpunet.training import cuda_graph, loop
from tests import fake_cupy, fake_graph
from tests.conftest import REPO
from tests.helpers import host
from tests.kernels import host_compiled

L = gn.layers
pytestmark = pytest.mark.skipif(not host_compiled.available(),
                                reason="no C++ compiler (g++) to run the raw kernels on the host")


@pytest.fixture
def graph_gpu(monkeypatch):
    """The CuPy stand-in with capture, as the current GPU."""
    saved = {k: v for k, v in sys.modules.items() if k.startswith("fakecupy")}
    cp, cupyx = fake_cupy.gpu_module()
    state = fake_graph.install(monkeypatch, cp)
    monkeypatch.setattr(backend, "_import_cupy", lambda: cp)
    monkeypatch.setattr(_registry, "_import_cupy", lambda: cp)
    monkeypatch.setattr(_registry, "_cache", {})
    monkeypatch.setattr(_raw, "_import_cupy", lambda: cp)
    monkeypatch.setattr(_raw, "_cache", {})
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.delenv("GPUNET_CONV_KERNELS", raising=False)
    monkeypatch.delenv("GPUNET_GEMM", raising=False)
    monkeypatch.delenv("GPUNET_CAPTURE_GEMM", raising=False)
    backend.gpu_status.cache_clear()
    yield cp, state
    backend.gpu_status.cache_clear()
    for k in [k for k in sys.modules if k.startswith("fakecupy")]:
        del sys.modules[k]
    sys.modules.update(saved)


@pytest.fixture
def steps(monkeypatch):
    """The CapturedStep objects fit makes."""
    made = []

    def spy(model, runner, enabled, batch_size):
        step = cuda_graph.graphed(model, runner, enabled, batch_size)
        made.append(step)
        return step
    monkeypatch.setattr(loop, "graphed", spy)
    return made


def build(name: str, optimizer: str = "adam") -> gn.Sequential:
    gn.seed(21)
    if name == "mlp":
        layers = [L.Dense(16, 12), L.ReLU(), L.Dropout(0.25), L.Dense(12, 8), L.Tanh(),
                  L.Dense(8, 3)]
        shape = (16,)
    else:
        layers = [L.Conv2D(1, 4, 3, padding=1), L.ReLU(), L.MaxPool2D(2), L.Conv2D(4, 6, 3),
                  L.ReLU(), L.Flatten(), L.Dropout(0.2), L.Dense(24, 3)]
        shape = (1, 8, 8)
    model = gn.Sequential(layers, device="gpu", input_shape=shape)
    opt = gn.optimizers.Adam(lr=0.01) if optimizer == "adam" else \
        gn.optimizers.SGD(lr=0.05, momentum=0.9)
    model.compile(loss="crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


def data(name: str, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 16) if name == "mlp" else (n, 1, 8, 8)).astype(np.float32)
    flat = x.reshape(n, -1)
    return x, (flat[:, :4].sum(1) > 0).astype(np.int64) + (flat[:, 4:8].sum(1) > 0)


def train(name: str, optimizer: str = "adam", **kw) -> tuple[dict, np.ndarray]:
    x, y = data(name)
    model = build(name, optimizer)
    gn.seed(5)
    hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0, log_every=2, workers=1, **kw)
    return hist.history, host(model.flat_params)


@pytest.mark.parametrize("name,optimizer", [("mlp", "adam"), ("cnn", "sgd"), ("cnn", "adam")])
def test_captured_training_equals_eager_training(graph_gpu, steps, name, optimizer):
    """Same seed, same data: the graph replays the eager step (dropout noise drawn in the same
    order, outside the graph). Only the GEMM kernel's summation order differs from matmul."""
    eager_hist, eager_params = train(name, optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: the step was captured
        graph_hist, graph_params = train(name, optimizer, cuda_graph=True)
    step = steps[-1]
    assert step.failed == "" and step.graph is not None
    assert step.launches == 3 * 4  # 150 = 4 × 32 + 22: the last batch of each epoch is eager
    assert step.graph.launches == step.launches
    assert step.grew_during_capture == 0
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(graph_hist[key], eager_hist[key], rtol=2e-4, err_msg=key)
    np.testing.assert_allclose(graph_params, eager_params, rtol=2e-3, atol=2e-4)
    assert graph_hist["loss"][-1] < graph_hist["loss"][0]


def test_nothing_is_refused_during_capture_and_the_graph_is_not_python(graph_gpu, steps):
    """Capture ran without a refused call, and a launch repeats the recording: a learning rate
    read by Python during capture would stay frozen (so the optimizer runs outside)."""
    cp, state = graph_gpu
    train("cnn", cuda_graph=True)
    assert state.refused == []
    step = steps[-1]
    ops = step.graph.ops
    assert len(ops) > 20
    assert not any(getattr(fn, "__name__", "") == "step" for fn, *_ in ops)  # no optimizer


def test_the_reduce_gradients_hook_runs_outside_the_graph_before_each_update(graph_gpu, steps):
    """A model whose `reduce_gradients` is not the identity (data-parallel training plugs an
    all-reduce in there): it runs eagerly once per step, on the gradients the graph wrote,
    before the optimizer; captured training equals eager training with the same hook."""
    def hooked(cuda_graph: bool):
        x, y = data("mlp")
        model = build("mlp")
        seen = []

        def halve(flat_grads):  # a stand-in for an all-reduce averaging two identical workers
            seen.append(float(abs(flat_grads).sum()))
            flat_grads *= 0.5
        model.reduce_gradients = halve
        gn.seed(5)
        hist = model.fit(x, y, epochs=3, batch_size=32, verbose=0, workers=1,
                         cuda_graph=cuda_graph)
        return hist.history, host(model.flat_params), seen

    eager_hist, eager_params, eager_seen = hooked(False)
    graph_hist, graph_params, graph_seen = hooked(True)
    assert steps[-1].launches == 12 and len(graph_seen) == len(eager_seen) == 15
    np.testing.assert_allclose(graph_seen, eager_seen, rtol=1e-3)  # the graph's fresh grads
    np.testing.assert_allclose(graph_params, eager_params, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(graph_hist["loss"], eager_hist["loss"], rtol=2e-4)
    plain_hist, plain_params = train("mlp")
    assert not np.allclose(plain_params, graph_params)  # the hook changed the training


def test_each_launch_computes_its_own_batch(graph_gpu):
    """Launch after launch with new batches: the gradients, output and loss equal an eager
    `compute_gradients` on the same batch (no dropout: nothing random)."""
    cp, _ = graph_gpu
    model = build("cnn")
    model.layers[6].rate = 0.0
    step = cuda_graph.CapturedStep(model, 16)
    rng = np.random.default_rng(3)
    for _ in range(3):
        xb = cp.asarray(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
        yb = cp.asarray(rng.integers(0, 3, 16))
        assert step._launch(xb, yb)
        graph = host(model.flat_grads).copy(), host(step.out).copy(), float(step.loss)
        out, loss = model.compute_gradients(xb, yb)
        np.testing.assert_allclose(graph[0], host(model.flat_grads), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(graph[1], host(out), rtol=1e-5, atol=1e-6)
        assert graph[2] == pytest.approx(float(loss), rel=1e-5)
    assert step.launches == 3


def test_the_captured_step_serves_validation_and_the_last_batch_eagerly(graph_gpu, steps):
    """test_step and predict_step are the model's; a batch of another size runs the model's
    eager train_step (cuBLAS through CuPy, no refusal), so it is not launched."""
    x, y = data("mlp")
    model = build("mlp")
    model.fit(x[:120], y[:120], epochs=1, batch_size=32, verbose=0, workers=1,
              validation_data=(x[120:], y[120:]), cuda_graph=True)
    step = steps[-1]
    assert step.launches == 3 and step.failed == ""  # 120 = 3 × 32 + 24
    out, loss = step.test_step(model.xp.asarray(x[:5]), model.xp.asarray(y[:5]))
    np.testing.assert_allclose(host(out), host(model.predict_step(model.xp.asarray(x[:5]))))
    assert set(model.history.history) >= {"val_loss", "val_accuracy"}


def test_capture_that_fails_falls_back_with_a_warning(graph_gpu, steps, monkeypatch):
    """With the products left on cuBLAS, capture is refused (as by CuPy): one warning, then
    every batch runs eagerly and training equals the eager run."""
    eager_hist, eager_params = train("mlp")
    monkeypatch.setenv("GPUNET_CAPTURE_GEMM", "cupy")
    with pytest.warns(RuntimeWarning, match="could not be captured.*cuBLAS API during stream"):
        graph_hist, graph_params = train("mlp", cuda_graph=True)
    assert steps[-1].failed and steps[-1].launches == 0
    np.testing.assert_allclose(graph_params, eager_params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(graph_hist["loss"], eager_hist["loss"], rtol=1e-6)


def test_reading_graph_results_before_a_launch_is_caught(graph_gpu):
    """The stand-in's capture leaves the memory it allocated unwritten (NaN) until a launch,
    as on a GPU: a step that skipped the launch would train on NaN here."""
    cp, _ = graph_gpu
    model = build("mlp")
    step = cuda_graph.CapturedStep(model, 8)
    xb = cp.asarray(np.ones((8, 16), np.float32))
    yb = cp.asarray(np.zeros(8, np.int64))
    assert step.graph is None  # until the first step
    real_capture = step._capture

    def capture_only():
        real_capture()
        assert np.isnan(host(model.layers[0]._x)).sum() == 0  # the static input: not the graph's
        assert np.isnan(host(model.layers[5]._x)).all()  # a captured temporary: NaN for now
    step._capture = capture_only
    assert step._launch(xb, yb)
    assert not np.isnan(host(model.layers[5]._x)).any()  # the launch wrote it


def test_a_layer_drawing_its_own_randomness_is_not_captured(graph_gpu, steps):
    class Noisy(L.ReLU):
        uses_rng = True
    model = build("mlp")
    model.layers[1] = Noisy()
    model.layers[1].to(model.xp)
    step = cuda_graph.CapturedStep(model, 8)
    cp, _ = graph_gpu
    with pytest.warns(RuntimeWarning, match=r"Noisy\(\) draws random numbers inside the step"):
        assert not step._launch(cp.zeros((8, 16), np.float32), cp.zeros(8, np.int64))
    assert not step._launch(cp.zeros((8, 16), np.float32), cp.zeros(8, np.int64))  # for good
    before = host(model.flat_params).copy()
    step.train_step(cp.zeros((8, 16), np.float32), cp.zeros(8, np.int64))  # eager, and trains
    assert step.launches == 0 and not np.array_equal(before, host(model.flat_params))


def test_capture_on_the_null_stream_is_refused(graph_gpu):
    with pytest.raises(RuntimeError, match="cannot capture on the default"):
        fake_graph.NULL.begin_capture()


def test_growth_of_the_pool_during_capture_is_reported(graph_gpu, monkeypatch):
    cp, _ = graph_gpu
    model = build("mlp")
    step = cuda_graph.CapturedStep(model, 8)
    step.pool.grow_on_capture = 512
    assert step._launch(cp.zeros((8, 16), np.float32), cp.zeros(8, np.int64))
    assert step.grew_during_capture == 512


def test_switch_is_ignored_with_a_warning_on_the_cpu():
    gn.seed(1)
    model = gn.Sequential([L.Dense(4, 2)], device="cpu")
    model.compile(loss="crossentropy", optimizer="sgd")
    with pytest.warns(RuntimeWarning, match=r"cuda_graph=True\) needs a GPU; ignored"):
        model.fit(np.zeros((8, 4), np.float32), np.zeros(8, np.int64), verbose=0,
                  cuda_graph=True)


def test_conv_kernels_switch_trains_like_the_reference_path(graph_gpu, monkeypatch):
    """GPUNET_CONV_KERNELS=1 on the stand-in: the one-launch im2col/col2im (host-compiled)
    train the cnn as the reference path does, eagerly and inside the captured step."""
    reference_hist, reference_params = train("cnn")
    monkeypatch.setenv("GPUNET_CONV_KERNELS", "1")
    calls = []
    real = _raw.kernel
    monkeypatch.setattr(_raw, "kernel", lambda name, dtype: calls.append(name) or
                        real(name, dtype))
    hist, params = train("cnn")
    assert {"im2col", "col2im"} <= set(calls) and "gemm" not in calls
    np.testing.assert_allclose(params, reference_params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hist["loss"], reference_hist["loss"], rtol=1e-5)
    graph_hist, graph_params = train("cnn", cuda_graph=True)
    np.testing.assert_allclose(graph_params, reference_params, rtol=2e-3, atol=2e-4)


def test_the_premises_of_the_captured_step_hold_in_the_installed_cupy():
    """The premises of the captured step, read from the installed CuPy: capture defaults to
    relaxed mode (cudaMalloc allowed), random and ndarray.set exist as used, the allocator
    context and the capture query exist."""
    cp = pytest.importorskip("cupy", reason="CuPy is not installed here")
    import inspect

    from cupy_backends.cuda.api import runtime

    assert callable(cp.cuda.using_allocator) and callable(runtime.streamIsCapturing)
    assert "stream capture mode" in cp.cuda.Stream.begin_capture.__doc__.lower() or \
        "streamCaptureModeRelaxed" in cp.cuda.Stream.begin_capture.__doc__
    assert "dtype" in inspect.signature(cp.random.random).parameters
    assert cp.cuda.Stream.null.ptr == 0  # the legacy stream, on which capture is refused


@pytest.mark.gpu
@pytest.mark.parametrize("products", ["kernel", "cublas"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_captured_training_equals_eager_training_on_a_gpu(steps, monkeypatch, name, products):
    """The same comparison on a real GPU, with the products inside the graph from the GEMM
    kernel or from cuBLAS called directly (GPUNET_CAPTURE_GEMM)."""
    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    monkeypatch.setenv("GPUNET_CAPTURE_GEMM", products)
    eager_hist, eager_params = train(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph_hist, graph_params = train(name, cuda_graph=True)
    step = steps[-1]
    assert step.failed == "" and step.launches == 12
    assert step.grew_during_capture == 0, "the private pool grew during capture"
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(graph_hist[key], eager_hist[key], rtol=1e-3, err_msg=key)
    np.testing.assert_allclose(graph_params, eager_params, rtol=5e-3, atol=5e-4)


def test_the_benchmark_worker_trains_with_the_captured_step(graph_gpu, steps, shared_data,
                                                             monkeypatch):
    """`scripts/benchmark.py --device gpu --cuda-graph`: the gpunet fit runs launch graphs."""
    if not (shared_data / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not found")
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from bench import gpunet_side

    spec = {"model": "mlp", "device": "gpu", "seed": 0, "data_dir": str(shared_data),
            "n_train": 256, "n_test": 100, "batch_size": 64, "warmup": 1, "epochs": 1,
            "infer_repeats": 1, "variant": "fit", "cuda_graph": True}
    result = gpunet_side.train(spec)
    assert np.isfinite(result["loss"]) and steps[-1].launches == 2 * 4 and not steps[-1].failed


def test_the_switch_must_be_a_bool():
    model = gn.Sequential([L.Dense(4, 2)], device="cpu")
    model.compile(loss="crossentropy", optimizer="sgd")
    with pytest.raises(ValueError, match="fit: cuda_graph must be"):
        model.fit(np.zeros((8, 4), np.float32), np.zeros(8, np.int64), verbose=0,
                  cuda_graph="yes")


@pytest.mark.gpu
def test_conv_kernels_train_like_the_reference_path_on_a_gpu(steps, monkeypatch):
    """GPUNET_CONV_KERNELS=1 on a real GPU: eager and captured cnn training as the reference."""
    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    reference_hist, reference_params = train("cnn")
    monkeypatch.setenv("GPUNET_CONV_KERNELS", "1")
    hist, params = train("cnn")
    np.testing.assert_allclose(params, reference_params, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(hist["loss"], reference_hist["loss"], rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph_hist, graph_params = train("cnn", cuda_graph=True)
    assert steps[-1].launches == 12
    np.testing.assert_allclose(graph_params, reference_params, rtol=5e-3, atol=5e-4)
