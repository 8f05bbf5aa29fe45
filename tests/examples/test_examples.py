"""The examples: each runs with --quick as a student would, writes its results and its plot, and
shows what it claims to show; Nielsen's loop matches gpunet's step; helpers behave."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gpunet as gn
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
PNGS = {"network1": ["network1.png"], "network2": ["network2.png"],
        "network3": ["network3.png"],
        "learning_rates": ["learning_rates_toy.png", "learning_rates_mnist.png"],
        "overfitting": ["overfitting.png"], "activations": ["activations.png"]}
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict:
    """Every example run once with --quick; {name: (completed process, results JSON)}."""
    out = tmp_path_factory.mktemp("examples_out")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    runs = {}
    for name in PNGS:
        proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--quick",
                               "--device", "cpu", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, f"{name}.py --quick failed:\n{proc.stderr[-3000:]}"
        runs[name] = (proc, json.loads((out / f"{name}.json").read_text()), out)
    return runs


@pytest.mark.parametrize("name", list(PNGS))
def test_quick_run_writes_results_and_plots(quick_runs, name):
    proc, results, out = quick_runs[name]
    assert "MNIST 5k sample" in results["data"]
    for png in PNGS[name]:
        if HAVE_MPL:
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert not (out / png).exists()
            assert "matplotlib is not installed" in proc.stdout


def test_network1_trains_and_times_both(quick_runs):
    _, r, _ = quick_runs["network1"]
    assert r["gpunet_scaled_init"]["best"] > 0.5  # chance is 0.1
    assert len(r["nielsen_loop"]["accuracy"]) == len(r["gpunet_book_init"]["accuracy"]) == 2
    assert all(s > 0 for s in r["nielsen_loop"]["seconds"] + r["gpunet_book_init"]["seconds"])
    assert r["speedup"] > 0 and r["book"] == 0.9542


def test_network2_shows_the_learning_slowdown(quick_runs):
    _, r, _ = quick_runs["network2"]
    quadratic, cross_entropy = r["one_neuron"]["quadratic"], r["one_neuron"]["cross-entropy"]
    assert quadratic[-1] > 0.95  # the saturated neuron has barely moved from 0.98
    assert cross_entropy[-1] < 0.5  # the cross-entropy one has learned
    assert r["regularized"]["scaled"]["best"] > 0.5


def test_network3_expands_and_learns(quick_runs):
    _, r, _ = quick_runs["network3"]
    assert r["training_images"] == 5 * 400
    assert r["best"] > 0.3


def test_learning_rates_toy_and_network(quick_runs):
    _, r, _ = quick_runs["learning_rates"]
    dist = {lr: np.array(v["w"]) + 1 for lr, v in r["toy"].items()}  # distance to w = -1
    assert abs(dist["0.6"][-1]) < 1e-9 and abs(dist["0.2"][-1]) < 1e-5
    np.testing.assert_allclose(dist["0.99"][1:] / dist["0.99"][:-1], -0.98, rtol=1e-9)
    np.testing.assert_allclose(dist["0.01"][1:] / dist["0.01"][:-1], 0.98, rtol=1e-9)
    acc = {lr: v["test_accuracy"] for lr, v in r["network"].items()}
    assert acc["0.2"] > 0.5 and acc["0.01"] < acc["0.2"]


def test_overfitting_runs_every_cure(quick_runs):
    _, r, _ = quick_runs["overfitting"]
    runs = r["runs"]
    assert list(runs) == ["baseline", "L2 lambda 0.1", "dropout", "augmentation",
                          "early stopping", "more data"]
    assert runs["baseline"]["training_images"] == 300
    assert runs["more data"]["training_images"] == 1200
    assert len(runs["baseline"]["test_accuracy"]) == runs["baseline"]["epochs_run"] == 3
    assert all(v["final_test_accuracy"] > 0.2 for v in runs.values())


def test_activations_show_the_vanishing_gradient(quick_runs):
    _, r, _ = quick_runs["activations"]
    runs = r["runs"]
    assert runs["sigmoid"]["first_to_last"] < 0.05  # the first layer learns far slower
    assert runs["ReLU"]["first_to_last"] > 0.1
    assert len(runs["sigmoid"]["norms"]) == 100  # every mini-batch of epoch 1: 1,000 / 10
    assert runs["tanh"]["test_accuracy"] > 0.3


# -- the pieces, in process ----------------------------------------------------------------------
@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_nielsen_minibatch_update_equals_one_gpunet_step(examples_path):
    """The per-sample loop and gpunet's batched step are the same algorithm: one mini-batch
    from the same weights gives the same weights (float32 against float64)."""
    nielsen = _module("_nielsen")
    rng = np.random.default_rng(3)
    x = rng.random((10, 784)).astype(np.float32)
    y = rng.integers(0, 10, 10)
    net = nielsen.Network([784, 30, 10], seed=5)
    L = gn.layers
    model = gn.Sequential([L.Dense(784, 30), L.Sigmoid(), L.Dense(30, 10), L.Sigmoid()],
                          device="cpu")
    model.set_weights({"layer0.W": net.weights[0].T, "layer0.b": net.biases[0][:, 0],
                       "layer2.W": net.weights[1].T, "layer2.b": net.biases[1][:, 0]})
    model.compile(loss=gn.losses.MSE(), optimizer=gn.optimizers.SGD(lr=3.0))
    net.update_mini_batch(nielsen.as_samples(x, y), 3.0)
    model.fit(x, y.astype(np.int32), epochs=1, batch_size=10, shuffle=False, verbose=0)
    for i, j in ((0, 0), (1, 2)):
        np.testing.assert_allclose(model.layers[j].params["W"], net.weights[i].T, atol=2e-5)
        np.testing.assert_allclose(model.layers[j].params["b"], net.biases[i][:, 0], atol=2e-5)
    assert net.evaluate(nielsen.as_test(x, y)) == int(
        (model.predict(x).argmax(axis=1) == y).sum())


def test_expand_shifts_by_one_pixel(examples_path):
    network3 = _module("network3")
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 0, 5] = 1.0  # a pixel on the top edge
    x[0, 0, 10, 27] = 2.0  # one on the right edge
    big, labels = network3.expand(x, np.array([7]))
    assert big.shape == (5, 1, 28, 28) and labels.tolist() == [7] * 5
    up, down, left, right = big[1:, 0]
    assert up[0, 5] == 0 and up[9, 27] == 2 and up.sum() == 2  # the top pixel fell off
    assert down[1, 5] == 1 and down[11, 27] == 2
    assert left[0, 4] == 1 and left[10, 26] == 2
    assert right[0, 6] == 1 and right.sum() == 1  # the right-edge pixel fell off


def test_missing_matplotlib_is_said_plainly(examples_path, monkeypatch, capsys):
    common = _module("_common")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert common.pyplot() is None
    assert 'pip install -e ".[plot]"' in capsys.readouterr().out


def test_results_json_is_written_atomically(examples_path, tmp_path):
    common = _module("_common")
    path = common.save_json(tmp_path / "sub", "r.json", {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        common.save_json(tmp_path / "sub", "r.json", {"a": object()})
    assert json.loads(path.read_text()) == {"a": [1, 2]}  # the old file is untouched
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["r.json"]


def test_pool_l2_is_optional(examples_path):
    network3 = _module("network3")
    if hasattr(gn.layers, "L2Pool2D"):
        assert type(network3.pool("l2")).__name__ == "L2Pool2D"
    else:
        with pytest.raises(SystemExit, match="no gn.layers.L2Pool2D"):
            network3.pool("l2")
    assert isinstance(network3.pool("max"), gn.layers.MaxPool2D)
