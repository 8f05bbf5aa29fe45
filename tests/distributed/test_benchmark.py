"""`scripts/benchmark.py --distributed 2 --quick` runs end to end under mpiexec and reports
images/s, scaling efficiency and the all-reduce time per step. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared_data_dir
from tests.distributed.mpirun import needs_mpi


@needs_mpi
@pytest.mark.slow
def test_distributed_benchmark_reports_scaling(tmp_path):
    data = shared_data_dir()
    if not (data / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {data} (set GPUNET_DATA)")
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"),
                           "--distributed", "2", "--quick", "--models", "mlp", "--threads", "2",
                           "--warmup", "0", "--json", str(out), "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    m = res["models"]["mlp"]
    assert list(m["runs"]) == ["1 process × 2 thread(s)", "1 rank × 1 thread(s)",
                               "2 ranks × 1 thread(s)"]
    two = m["runs"]["2 ranks × 1 thread(s)"]
    assert two["steps"] == 16 and two["allreduce_ms"] > 0  # 2,000 images / batch 128
    assert two["gradient_floats"] == 242_762
    assert all(r["images_per_s"] > 0 for r in m["runs"].values())
    assert m["scaling_efficiency"] > 0 and "scaling efficiency" in proc.stdout
