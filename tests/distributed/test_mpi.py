"""Data-parallel training on 2 and 3 real MPI ranks (`mpiexec -n N`, pip's mpich) against one
process: same maths, same decisions, one writer, resume on another rank count, faults."""

from __future__ import annotations

import numpy as np
import pytest

from tests.distributed import mpi_job
from tests.distributed.mpirun import mpirun, needs_mpi, output

pytestmark = needs_mpi
RANKS = [2, 3]
TIMING = ("seconds", "images_per_second")


def _figures(history: dict) -> dict:
    return {k: v for k, v in history.items() if k not in TIMING}


@pytest.mark.parametrize("n", RANKS)
def test_n_ranks_compute_what_one_process_computes(n):
    """Ranks seeded differently, uneven shards (batch 16 over 3 ranks: 6/5/5, last batch 8:
    3/3/2): rank 0's weights and generator win, and SGD momentum and Adam end where one process
    ends, to float32 rounding; one all-reduce per step."""
    proc, _, results = mpirun(n, "same_maths")
    assert proc.returncode == 0 and len(results) == 1, output(proc)
    for optimizer, r in results[0].items():
        assert r["same_on_all_ranks"] and r["histories_equal"], optimizer
        assert r["max_abs_diff"] <= 2e-6 * max(r["scale"], 1.0), (optimizer, r["max_abs_diff"])
        assert r["allreduce_calls"] == 3 * 5  # 3 epochs × ceil(72 / 16) steps
        mine, ref = _figures(r["history"]), _figures(r["ref_history"])
        assert mine.keys() == ref.keys()
        for key in mine:
            np.testing.assert_allclose(mine[key], ref[key], rtol=1e-5, err_msg=key)
        assert r["test"]["accuracy"] == r["ref_test"]["accuracy"]
        assert r["test"]["loss"] == pytest.approx(r["ref_test"]["loss"], rel=1e-5)


@pytest.mark.parametrize("n", RANKS)
def test_ranks_decide_alike_and_only_rank_0_writes(n, tmp_path):
    """EarlyStopping and ReduceLROnPlateau stop and cut on every rank at the same epoch (from
    all-reduced figures, with dropout drawing per rank); checkpoints, the best model, the CSV
    log and the epoch lines come from rank 0 alone."""
    proc, _, results = mpirun(n, "decisions", str(tmp_path))
    assert proc.returncode == 0 and len(results) == 1, output(proc)
    ranks = results[0]["ranks"]
    assert len(ranks) == n
    first = ranks[0]
    assert first["stop"], "early stopping should end this run before 12 epochs"
    assert len(first["history"]["loss"]) < 12
    assert first["lr"] < first["history"]["lr"][0], "the LR was never cut"
    for other in ranks[1:]:
        assert _figures(other["history"]) == _figures(first["history"])
        assert (other["stop"], other["lr"], other["crc"]) == \
               (first["stop"], first["lr"], first["crc"])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["best-0.npz", "ckpt-0.npz", "log-0.csv"], written
    assert proc.stdout.count("epoch 1/12") == 1, proc.stdout


@pytest.mark.parametrize("first,then", [(2, 3), (3, 2)])
def test_resume_on_another_number_of_ranks(first, then, tmp_path):
    """2 epochs on `first` ranks, then resumed to 4 on `then` ranks: one process's 4 epochs."""
    ck = str(tmp_path / "ck.npz")
    proc, _, _ = mpirun(first, "train_resume", ck, "2", "no")
    assert proc.returncode == 0, output(proc)
    proc, _, results = mpirun(then, "train_resume", ck, "4", "yes")
    assert proc.returncode == 0 and len(results) == 1, output(proc)
    x, y = mpi_job.data(90)
    ref = mpi_job.build("momentum", seed=5)
    ref.fit(x, y, epochs=4, batch_size=16, verbose=0)
    np.testing.assert_allclose(results[0]["params"], ref.flat_params, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("n", RANKS)
def test_an_error_on_one_rank_stops_every_rank(n):
    """Rank 1 raises mid-epoch while the others wait in an all-reduce: all end within
    seconds (MPI_Abort), with a line naming the rank and the error; nobody hangs."""
    proc, seconds, results = mpirun(n, "fault", timeout=90)
    assert proc.returncode != 0 and not results, output(proc)
    text = proc.stdout + proc.stderr
    assert f"rank 1 of {n} failed in fit: RuntimeError: boom on purpose" in text, output(proc)
    assert seconds < 30, seconds


@pytest.mark.parametrize("n", RANKS)
def test_data_of_different_sizes_is_refused_on_every_rank(n):
    proc, _, results = mpirun(n, "mismatch")
    assert proc.returncode == 0, output(proc)
    assert sorted(r["rank"] for r in results) == list(range(n))
    for r in results:
        assert "different training samples" in r["error"]
        assert f"rank {n - 1}: 80" in r["error"] and "rank 0: 90" in r["error"]


@pytest.mark.parametrize("n", RANKS)
def test_a_nan_loss_on_one_rank_stops_every_rank_before_the_step(n):
    """The last rank's loss is NaN in one step: it poisons its share of the all-reduce, so
    every rank sees it in the same step, skips the update and raises FloatingPointError (no
    abort)."""
    proc, _, results = mpirun(n, "diverge")
    assert proc.returncode == 0, output(proc)
    assert sorted(r["rank"] for r in results) == list(range(n)), output(proc)
    for r in results:
        assert "on some rank in epoch 1, batch 1" in r["error"] and r["untouched"], r
        assert "was not trained on" in r["error"]


@pytest.mark.parametrize("n", RANKS)
def test_the_gpu_code_path_on_ranks_matches_one_process(n):
    """On the CuPy stand-in: device batches from this rank's share of the permutation, the
    device gradient all-reduced (staged through the host by the mpi backend), CuPy's generator
    seeded with the one draw a single process makes: the same weights as one process."""
    proc, _, results = mpirun(n, "fake_gpu")
    assert proc.returncode == 0 and len(results) == 1, output(proc)
    r = results[0]
    assert r["on_device"] == [True] * n and r["calls"] == 3 * 5
    assert r["max_abs_diff"] < 1e-6
    np.testing.assert_allclose(r["val_loss"], r["ref_val_loss"], rtol=1e-5)
    assert r["test"]["accuracy"] == r["ref_test"]["accuracy"]
