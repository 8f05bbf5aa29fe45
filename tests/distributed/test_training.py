"""The pieces of data-parallel training that need no MPI: how batches are cut, how gradients
are weighted, what one rank (or no communicator) does, rank streams, callbacks per rank."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from gpunet import distributed as dist
from gpunet.distributed.comm import Communicator


class Rank(Communicator):
    """Rank r of `size`, for what needs only the numbers (no collective is called)."""

    def __init__(self, rank: int, size: int) -> None:
        super().__init__(rank, size, rank)


@pytest.mark.parametrize("n,batch,size", [(90, 16, 3), (72, 16, 2), (100, 10, 3), (7, 7, 7)])
def test_every_sample_of_every_batch_goes_to_exactly_one_rank(n, batch, size):
    order = np.random.default_rng(0).permutation(n)
    plans = [dist.BatchPlan(Rank(r, size), n, batch) for r in range(size)]
    local = [p.local_order(order) for p in plans]
    n_batches = -(-n // batch)
    for b in range(n_batches):
        glob = order[b * batch:(b + 1) * batch]
        parts = []
        for p, lo in zip(plans, local, strict=True):
            start = b * p.local_batch_size
            parts.append(lo[start:start + p.local_batch_size][:len(glob)])
        shards = [part[:round(p.weight(b) * len(glob))] for part, p in zip(parts, plans,
                                                                             strict=True)]
        assert np.array_equal(np.concatenate(shards), glob)  # contiguous, in rank order
        assert sum(p.weight(b) for p in plans) == pytest.approx(1.0)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_uneven_shards_are_weighted_by_size():
    plans = [dist.BatchPlan(Rank(r, 3), 90, 16) for r in range(3)]
    assert [p.local_batch_size for p in plans] == [6, 5, 5]
    assert [p.weight(0) for p in plans] == [6 / 16, 5 / 16, 5 / 16]
    assert [p.weight(5) for p in plans] == [4 / 10, 3 / 10, 3 / 10]  # the last batch: 10


@pytest.mark.parametrize("n,batch", [(90, 2), (91, 10)])
def test_a_batch_smaller_than_the_rank_count_is_refused(n, batch):
    with pytest.raises(dist.CollectiveError, match="needs at least 3 samples, one per rank"):
        dist.BatchPlan(Rank(0, 3), n, batch)


@pytest.mark.parametrize("comm", [None, dist.SingleCommunicator()])
def test_one_rank_changes_nothing(comm):
    plan = dist.BatchPlan(comm, 10, 4)
    order = np.arange(10)[::-1]
    assert plan.local_order(order) is order and plan.local_order(None) is None
    assert plan.local_batch_size == 4 and plan.weight(2) == 1.0
    g = np.ones(3, np.float32)
    assert dist.reduce_gradients(comm, g, 0.5, True) and g.tolist() == [1, 1, 1]
    assert not dist.reduce_gradients(comm, g, 0.5, False)
    assert dist.reduce_sums(comm, 2.5, 3) == [2.5, 3.0]
    assert dist.is_writer(comm) and dist.is_single(comm)
    backend.seed(3)
    assert dist.rank_seed(comm) == int(np.random.default_rng(3).integers(2**63))
    state = backend.get_rng_state()
    with dist.rank_stream(comm, random=True):
        pass
    assert backend.get_rng_state() == state  # no draw for one rank


def test_a_rank_draws_from_its_own_stream_and_the_shared_one_stays_in_step():
    """Ranks draw the same seeds from the shared generator, each uses its own."""
    draws, states = [], []
    for r in range(3):
        backend.seed(11)
        with dist.rank_stream(Rank(r, 3), random=True):
            draws.append(backend.rng().random())
        states.append(backend.get_rng_state())
    assert len(set(draws)) == 3  # different masks per rank
    assert states[0] == states[1] == states[2]  # the permutation stream is shared


def test_rank_streams_nest_with_thread_streams():
    backend.seed(5)
    with backend.local_rng(1):
        outer = backend.rng()
        with backend.local_rng(2):
            assert backend.rng() is not outer
        assert backend.rng() is outer


def test_other_ranks_leave_out_the_callbacks_that_only_write_files(tmp_path):
    cbs = [gn.callbacks.EarlyStopping(), gn.callbacks.ModelCheckpoint(tmp_path / "m.npz"),
           gn.callbacks.CSVLogger(tmp_path / "log.csv")]
    assert dist.rank_callbacks(Rank(0, 2), cbs) == cbs
    assert dist.rank_callbacks(Rank(1, 2), cbs) == cbs[:1]
    assert not dist.is_writer(Rank(1, 2))


def test_errors_pass_through_without_ranks():
    with pytest.raises(KeyError), dist.abort_on_error(dist.SingleCommunicator()):
        raise KeyError("x")


def test_init_alone_is_one_rank_and_importing_gpunet_never_imports_mpi4py():
    code = ("import sys, gpunet as gn; assert 'mpi4py' not in sys.modules; "
            "c = gn.distributed.init(); assert (c.rank, c.size) == (0, 1), c; "
            "assert 'mpi4py' not in sys.modules; print('ok')")
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("PMI_", "OMPI_", "PMIX_", "SLURM_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_fit_with_a_1_rank_communicator_equals_fit_without(tmp_path):
    x = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    params = []
    for comm in (None, dist.SingleCommunicator()):
        gn.seed(2)
        model = gn.Sequential([gn.layers.Dense(6, 8), gn.layers.ReLU(), gn.layers.Dropout(0.2),
                               gn.layers.Dense(8, 2)], device="cpu")
        model.compile(optimizer=gn.optimizers.Adam(lr=0.01), metrics=["accuracy"])
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, distributed=comm,
                  validation_split=0.2)
        assert model.evaluate(x, y, distributed=comm) == model.evaluate(x, y)
        params.append(model.flat_params.copy())
    assert np.array_equal(params[0], params[1])
