"""scripts/gpu_check.py, the one command for the first minutes on a GPU, runs end to end here on
the CuPy stand-in (tests/fake_cupy.py) so it cannot rot; every part reports even when another
fails; the CUDA-graph switch is found or reported as not available."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, shared_data_dir
from tests.kernels import host_compiled

SCRIPT = REPO / "scripts" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_the_stand_in(tmp_path):
    data = shared_data_dir()
    if not (data / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {data} (set GPUNET_DATA)")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--quick", "--fake-gpu",
                           "--data-dir", str(data), "--budget", "580",
                           "--pytest-args", "tests/kernels/test_registry.py"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = res["parts"]
    assert list(parts) == ["env", "pytest", "speed", "train", "benchmark", "distributed"]
    if importlib.util.find_spec("mpi4py") is None:
        assert parts["distributed"]["status"] == "not available"
    else:  # the MPI backend's selftest on 2 ranks; NCCL needs a real GPU
        assert parts["distributed"]["status"] == "pass", parts["distributed"]
        assert parts["distributed"]["runs"]["nccl, 1 rank"]["status"] == "skipped"
    # no GPU here: the gpu-marked tests skip, so the check as a whole does not pass
    assert parts["pytest"]["status"] == "skipped" and parts["pytest"]["counts"]["skipped"] >= 1
    assert proc.returncode == 1, proc.stderr
    for name in ("env", "train", "benchmark"):
        assert parts[name]["status"] == "pass", (name, parts[name])
    for model in ("mlp", "cnn"):
        assert parts["train"]["comparisons"][model]["gpu_device"] == "gpu"
        for device in ("gpu", "cpu"):
            assert parts["train"]["runs"][f"{model}-{device}"]["result"]["device"] == device
    assert parts["benchmark"]["cuda_graph"] == "on vs off through --cuda-graph"
    off, on = parts["benchmark"]["runs"].values()  # on the stand-in, graphs for the mlp only
    assert set(off["epoch_s"]) == {"mlp", "cnn"} and set(on["epoch_s"]) == {"mlp"}
    assert set(on["epoch_s"]["mlp"]) == {"gpunet", "gpunet-preloaded"}
    speed = parts["speed"]["runs"]
    assert len(speed) == 3 + 6
    assert {k for k, r in speed.items() if r["status"] == "skipped"} == {
        "mlp graph cublas", "cnn graph cublas", "cnn graph cublas conv1"}  # needs a GPU
    if host_compiled.available():  # the stand-in's graphs run the raw kernels compiled by g++
        assert parts["speed"]["status"] == "pass", speed
        ran = {k: r for k, r in speed.items() if r["status"] != "skipped"}
        assert all(r["captured"] == ("graph" in k) for k, r in ran.items()), speed
    md = (tmp_path / "gpu_check.md").read_text()
    assert "fake GPU" in md and "| train | pass |" in md and "CUDA graph:" in md
    assert "| cnn graph kernel conv1 |" in md


def test_every_part_reports_when_others_fail(tmp_path, monkeypatch):
    gc = _module()

    def broken(args, part, spec, timeout):
        raise RuntimeError(f"{part} broke")

    monkeypatch.setattr(gc, "run_part", broken)
    monkeypatch.setattr(gc, "pytest_part", lambda args: {"status": "pass", "counts": {}})
    monkeypatch.setattr(gc, "graph_switch", lambda: None)
    assert gc.main([str(tmp_path)]) == 1
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["parts"]["pytest"]["status"] == "pass"
    assert res["parts"]["env"] == {"status": "error", "error": "RuntimeError: env broke",
                                   "seconds": res["parts"]["env"]["seconds"]}
    assert res["parts"]["train"]["status"] == "error"
    assert "train broke" in (tmp_path / "gpu_check.md").read_text()


def test_a_timed_out_part_is_reported_and_the_budget_holds():
    gc = _module()
    res = gc._run([sys.executable, "-c", "import time; time.sleep(30)"], 5, parse=True)
    assert res["status"] == "timeout" and "5 s" in res["error"]
    args = SimpleNamespace(timeout_scale=1.0, fake_gpu=False,
                           deadline=gc.time.perf_counter() + 2)
    assert gc._timeout(args, 120) <= 2
    assert gc.run_part(args, "env", {}, 60)["status"] == "not run"


def test_the_cuda_graph_switch_is_detected_or_reported_absent():
    gc = _module()
    assert gc.parse_switch("  --device {cpu,gpu}\n  --no-torch") is None
    assert gc.parse_switch("  --cuda-graph {on,off}  capture") == (
        "--cuda-graph", [["--cuda-graph", "on"], ["--cuda-graph", "off"]])
    assert gc.parse_switch("  --graph   capture the step") == ("--graph", [[], ["--graph"]])
    assert gc.graph_switch() == ("--cuda-graph", [[], ["--cuda-graph"]])  # the benchmark's


def test_gpu_and_cpu_are_compared_with_tolerances():
    gc = _module()
    args = SimpleNamespace(acc_tol=0.02, loss_tol=0.15)

    def run(device, acc, loss, seconds=1.0):
        return {"status": "pass", "result": {"device": device, "test_accuracy": acc,
                                             "test_loss": loss, "seconds_per_epoch": seconds}}

    ok = gc.compare(run("gpu", 0.885, 0.33, 0.5), run("cpu", 0.87, 0.31), args)
    assert ok["status"] == "pass" and ok["speedup"] == 2.0
    assert gc.compare(run("gpu", 0.80, 0.33), run("cpu", 0.87, 0.31), args)["status"] == "fail"
    assert gc.compare(run("gpu", 0.87, 0.50), run("cpu", 0.87, 0.31), args)["status"] == "fail"
    assert gc.compare(run("cpu", 0.87, 0.31), run("cpu", 0.87, 0.31), args)["status"] == "fail"
    assert gc.compare({"status": "timeout"}, run("cpu", 0.87, 0.31), args)["status"] == "fail"
