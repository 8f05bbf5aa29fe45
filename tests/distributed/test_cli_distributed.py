"""`mpiexec -n N python scripts/train_mnist.py` (= gpunet-train): detected from the launcher's
environment, one writer, and the selftest the GPU check runs."""

from __future__ import annotations

import json

import pytest

from tests.distributed.mpirun import REPO, mpirun, needs_mpi, output

pytestmark = needs_mpi
SCRIPT = REPO / "scripts" / "train_mnist.py"


@pytest.mark.parametrize("n,flag", [(2, []), (3, ["--distributed", "mpi"])])
def test_training_command_on_ranks(n, flag, tmp_path):
    out, ck, best = tmp_path / "r.json", tmp_path / "ck.npz", tmp_path / "best.npz"
    proc, _, _ = mpirun(n, "--train-subset", "5k", "--epochs", "1", "--device", "cpu",
                        "--json", str(out), "--checkpoint", str(ck), "--save", str(best),
                        *flag, script=SCRIPT, timeout=240)
    assert proc.returncode == 0, output(proc)
    assert f"distributed: {n} ranks (mpi), global batch 64" in proc.stdout
    assert proc.stdout.count("test accuracy") == 1 and proc.stdout.count("epoch 1/1") == 1
    result = json.loads(out.read_text())
    assert result["ranks"] == n and result["test_accuracy"] > 0.5
    assert ck.is_file() and best.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "ck.npz", "r.json"]


def test_selftest_passes_on_cpu_ranks():
    """What scripts/gpu_check.py runs on a GPU machine, here on CPU ranks."""
    proc, _, _ = mpirun(2, "-m", "gpunet.distributed.selftest", "--backend", "mpi",
                        script=None, timeout=120)
    assert proc.returncode == 0, output(proc)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["selftest"] == "passed" and summary["ranks"] == 2
