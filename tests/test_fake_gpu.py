"""gpunet's GPU code paths end to end on a NumPy-backed CuPy stand-in (tests/fake_cupy.py):
`fit`, `evaluate`, `predict`, checkpoints and augmentation with device="gpu" run every GPU branch
(device arrays, CUDA kernels interpreted from source, streamed batches, CuPy's generator) and
agree with the CPU. Where a real GPU exists, the `gpu`-marked tests run the same paths on it."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from tests.conftest import REPO
from tests.helpers import host

L = gn.layers


def models(device: str) -> dict[str, gn.Sequential]:
    gn.seed(11)
    mlp = gn.Sequential([L.Dense(16, 12), L.ReLU(), L.Dense(12, 8), L.Tanh(), L.Dense(8, 3)],
                        device=device, input_shape=(16,))
    gn.seed(12)
    cnn = gn.Sequential([L.Conv2D(1, 4, 3, padding=1), L.MaxPool2D(2), L.ReLU(),
                         L.Conv2D(4, 6, 3), L.AvgPool2D(2), L.Sigmoid(), L.Flatten(),
                         L.Dense(6, 3)], device=device, input_shape=(1, 8, 8))
    for m in (mlp, cnn):
        m.compile(loss="crossentropy", optimizer=gn.optimizers.Adam(lr=0.01),
                  metrics=["accuracy"])
    return {"mlp": mlp, "cnn": cnn}


def data(name: str, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 16) if name == "mlp" else (n, 1, 8, 8)).astype(np.float32)
    flat = x.reshape(n, -1)
    return x, (flat[:, :4].sum(1) > 0).astype(np.int64) + (flat[:, 4:8].sum(1) > 0)


def test_the_stand_in_is_a_gpu_to_gpunet(fake_gpu):
    assert backend.gpu_status()[0]
    assert gn.Sequential([L.Dense(2, 2)], device="auto").device == "gpu"
    with pytest.raises(TypeError, match="host array mixed with device arrays"):
        fake_gpu.zeros(3) + np.zeros(3)  # as CuPy: no silent host/device mixing


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_fit_evaluate_predict_on_the_gpu_path_match_the_cpu(fake_gpu, name):
    x, y = data(name)
    runs = {}
    for device in ("cpu", "gpu"):
        model = models(device)[name]
        gn.seed(5)
        # no shuffling: on the GPU each epoch also draws a seed for CuPy's generator from the
        # host one, so the two devices' shuffles part after the first epoch
        hist = model.fit(x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0,
                         log_every=2, workers=1, shuffle=False)
        runs[device] = (hist.history, host(model.flat_params), model.predict(x),
                        model.evaluate(x, y))
        assert model.device == device and backend.device_of(model.flat_params) == device
    (h_cpu, p_cpu, out_cpu, ev_cpu), (h_gpu, p_gpu, out_gpu, ev_gpu) = runs["cpu"], runs["gpu"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(h_gpu[key], h_cpu[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-4, atol=1e-5)
    assert isinstance(out_gpu, np.ndarray) and type(out_gpu) is np.ndarray  # back on the host
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=1e-4, atol=1e-5)
    assert ev_gpu["accuracy"] == ev_cpu["accuracy"]
    assert h_gpu["loss"][-1] < h_gpu["loss"][0]


def test_dropout_augmentation_and_resume_on_the_gpu_path(fake_gpu, tmp_path):
    """GPU dropout and augmentation draw from CuPy's generator, which fit seeds from the host
    one every epoch: an interrupted and resumed run ends where an uninterrupted one does."""
    from gpunet.augment import RandomShiftRotate

    x, y = data("cnn", 120)

    def run(epochs, resume=None, stop_after=None):
        gn.seed(3)
        model = gn.Sequential([L.Conv2D(1, 3, 3), L.ReLU(), L.Flatten(), L.Dropout(0.3),
                               L.Dense(108, 3)], device="gpu", input_shape=(1, 8, 8))
        model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.05, momentum=0.9))

        class Stop(gn.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if stop_after is not None and epoch + 1 == stop_after:
                    raise KeyboardInterrupt

        model.fit(x, y, epochs=epochs, batch_size=24, verbose=0, callbacks=[Stop()],
                  augment=RandomShiftRotate(max_shift=1, max_degrees=5, image_shape=(1, 8, 8)),
                  checkpoint=tmp_path / "ck.npz", resume=resume)
        return host(model.flat_params)

    straight = run(4)
    run(4, stop_after=2)
    resumed = run(4, resume=tmp_path / "ck.npz")
    np.testing.assert_array_equal(resumed, straight)


def test_save_on_the_gpu_path_and_load_on_the_cpu(fake_gpu, tmp_path):
    model = models("gpu")["cnn"]
    x, _ = data("cnn", 10)
    model.save(tmp_path / "m.npz")
    loaded = gn.load_model(tmp_path / "m.npz", device="cpu")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_gpu_benchmark_worker_runs_on_the_gpu_path(fake_gpu, shared_data, monkeypatch,
                                                       model):
    """`scripts/benchmark.py --device gpu`'s gpunet side (timing is meaningless here)."""
    if not (shared_data / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not found")
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from bench import gpunet_side

    spec = {"model": model, "device": "gpu", "seed": 0, "data_dir": str(shared_data),
            "n_train": 256, "n_test": 100, "batch_size": 64, "warmup": 1, "epochs": 1,
            "infer_repeats": 1, "gemm_n": 64, "gemm_repeats": 1}
    for variant in ("fit", "preloaded"):
        result = gpunet_side.train({**spec, "variant": variant})
        assert len(result["epoch_s"]) == 1 and np.isfinite(result["loss"])
        assert result["memory"]["kind"] == "gpu_pool"
    assert gpunet_side.gemm(spec)["gflops"] > 0
