"""The training command, run as a user runs it (a subprocess): short end-to-end trainings on the
real data, and one clear line with exit code 2 for every user error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gpunet as gn
from tests.conftest import REPO

SCRIPT = [sys.executable, str(REPO / "scripts" / "train_mnist.py")]


def train(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(SCRIPT + list(args), capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=REPO)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines()
             if not line.startswith("gpunet: downloading")]  # progress, not the error
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args,fragment", [
    (["--epochs", "0"], "--epochs"),
    (["--model", "resnet"], "--model"),
    (["--val-split", "1.5"], "--val-split"),
    (["--train-subset", "5k", "--dataset", "fashion-mnist"], "MNIST only"),
    (["--resume", "/nonexistent/ck.npz"], "--resume"),
    (["--bogus"], "unrecognized arguments"),
    (["--workers", "0"], "--workers: must be 'auto' or a positive integer, got 0"),
    (["--workers", "two"], "--workers: must be 'auto' or a positive integer, got two"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    one_line_error(train(*args), fragment)


def test_missing_data_names_the_files(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = train("--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"),
                 env={"GPUNET_DATA": str(tmp_path / "nothing"), "XDG_CACHE_HOME": str(tmp_path),
                      "GPUNET_FASHION_MNIST_MIRROR": "http://127.0.0.1:9/"})
    one_line_error(proc, "train-images-idx3-ubyte")


@pytest.mark.skipif(gn.gpu_available(), reason="checks the error on a machine without a GPU")
def test_unusable_gpu_is_one_clear_line():
    one_line_error(train("--device", "gpu", "--train-subset", "5k"), "no GPU is usable")


@pytest.mark.slow
def test_mnist_5k_mlp_end_to_end(tmp_path):
    out = tmp_path / "result.json"
    model_path = tmp_path / "best.npz"
    proc = train("--train-subset", "5k", "--epochs", "3", "--json", str(out), "--save",
                 str(model_path), "--checkpoint", str(tmp_path / "ck.npz"), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "MNIST" in proc.stdout and "5,000 training" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) >= {"test_accuracy", "best_epoch", "epochs_run", "seconds_per_epoch",
                           "images_per_second", "device"}
    assert result["epochs_run"] == 3 and result["device"] == "cpu"
    assert result["test_accuracy"] > 0.85
    assert f"test accuracy {100 * result['test_accuracy']:.2f}%" in proc.stdout
    model = gn.load_model(model_path, device="cpu")
    x, y = gn.datasets.load_mnist(subset="5k")[1]
    pred = model.predict(gn.datasets.to_float(x[:2000])).argmax(axis=1)
    assert abs((pred == y[:2000]).mean() - result["test_accuracy"]) < 0.03
    # resume the finished 3-epoch run to 4 epochs: only one more epoch runs
    proc = train("--train-subset", "5k", "--epochs", "4", "--json", str(out), "--resume",
                 str(tmp_path / "ck.npz"), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["epochs_run"] == 4
    assert proc.stdout.count("epoch ") >= 1 and "epoch 4/4" in proc.stdout
    assert "epoch 1/4" not in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("model,workers", [("mlp", "auto"), ("cnn", "auto"), ("mlp", "2"),
                                           ("cnn", "1")])
def test_fashion_mnist_short_run(shared_data, tmp_path, model, workers):
    out = tmp_path / "r.json"
    proc = train("--dataset", "fashion-mnist", "--model", model, "--train-subset", "3000",
                 "--epochs", "2", "--json", str(out), "--checkpoint", str(tmp_path / "c.npz"),
                 "--workers", workers, env={"GPUNET_DATA": str(shared_data)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["epochs_run"] == 2
    assert result["test_accuracy"] > 0.6, result
    shared = "threads share each batch" in proc.stdout  # the device line says so
    assert shared == (workers == "2" or (workers == "auto" and model == "cnn"
                                         and gn.training.shards.blas_threads() > 1))
    assert np.isfinite(result["images_per_second"])


@pytest.mark.slow
def test_ctrl_c_keeps_checkpoint_and_best_weights(tmp_path):
    import signal

    ck, best = tmp_path / "ck.npz", tmp_path / "best.npz"
    proc = subprocess.Popen(SCRIPT + ["--train-subset", "5k", "--epochs", "500", "--patience",
                                      "500", "--checkpoint", str(ck), "--save", str(best)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("epoch 3/500"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    text = "".join(seen) + out
    assert proc.returncode == 130, text + err
    assert "Traceback" not in err
    assert f"--resume {ck}" in text and "test accuracy" in text
    assert ck.is_file() and best.is_file()
    assert not list(tmp_path.glob("*.tmp"))
    resumed = train("--train-subset", "5k", "--epochs", "5", "--resume", str(ck),
                    "--json", str(tmp_path / "r.json"))
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1/5" not in resumed.stdout and "epoch 5/5" in resumed.stdout


def test_plot_needs_matplotlib_or_writes_a_png(tmp_path, shared_data):
    png = tmp_path / "curves.png"
    args = ["--dataset", "fashion-mnist", "--train-subset", "600", "--epochs", "2", "--plot",
            str(png), "--checkpoint", str(tmp_path / "c.npz")]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        one_line_error(train(*args), 'pip install "gpunet[plot]"')
        return
    proc = train(*args, env={"GPUNET_DATA": str(shared_data)})
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
