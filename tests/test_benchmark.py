"""The benchmark harness works: `scripts/benchmark.py --quick --json` runs end to end (a 2,000
image subset, one epoch per contender) and writes every field. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared_data_dir

SCRIPT = REPO / "scripts" / "benchmark.py"


def _positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_benchmark_writes_every_field(tmp_path):
    data = shared_data_dir()
    if not (data / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {data} (set GPUNET_DATA)")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out),
                           "--data-dir", str(data)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["config"]["quick"] and res["config"]["n_train"] == 2000
    assert _positive(res["gemm"]["machine_gflops"])
    with_torch = importlib.util.find_spec("torch") is not None
    assert res["config"]["with_torch"] == with_torch
    for model in ("mlp", "cnn"):
        runs = res["models"][model]["runs"]
        expected = {"gpunet"} | ({"pytorch"} if with_torch else set())
        if with_torch and model == "cnn":
            expected.add("pytorch-channels_last")
        assert set(runs) == expected
        for name, r in runs.items():
            for key in ("images_per_s", "gflops", "gemm_fraction", "peak_mb",
                        "infer_images_per_s", "final_loss"):
                assert _positive(r[key]), (model, name, key, r[key])
            assert _positive(r["epoch_s"]["median"]) and r["epoch_s"]["n"] == 1
            assert r["epoch_s"]["min"] <= r["epoch_s"]["median"] <= r["epoch_s"]["max"]
            assert _positive(r["infer_s"]["median"])
        ratios = res["models"][model]["ratios"]
        assert all(_positive(v) for v in ratios.values())
        assert ("gpunet/pytorch" in ratios) == with_torch
    assert res["sweeps"] == {}
    assert "mlp" in proc.stdout and "images/s" in proc.stdout


def test_bad_arguments_exit_2():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--models", "resnet"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert "--models" in proc.stderr


def test_cuda_graph_needs_the_gpu_and_is_offered_in_help():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cuda-graph"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "--cuda-graph needs --device gpu" in proc.stderr
    help_text = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                               text=True, timeout=60, cwd=REPO).stdout
    assert "--cuda-graph" in help_text
