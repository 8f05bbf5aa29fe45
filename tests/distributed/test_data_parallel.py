"""`Ranks` and `RankStep`, what `fit` runs on ranks, in one process: a stand-in communicator
plays "the other rank" of the gradient all-reduce, so the weighting, the hook and the skipped
NaN step are checked exactly; the real multi-rank runs are in test_mpi.py."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet import distributed as dist
from gpunet.distributed.comm import Communicator
from gpunet.training.metrics import Tally


class TwoRanks(Communicator):
    """Rank 0 of 2. The all-reduce adds `other` (what rank 1 sends) and records what this rank
    sent; the allgather of figures adds a row of rank 1's `other_figures`."""

    backend = "stand-in"

    def __init__(self, other: np.ndarray | None = None,
                 other_figures: list[float] | None = None) -> None:
        super().__init__(0, 2, 0)
        self.other, self.other_figures, self.sent = other, other_figures, []

    def _allreduce(self, array: np.ndarray) -> None:
        self.sent.append(array.copy())
        array += self.other

    def allgather_floats(self, values: list[float]) -> np.ndarray:
        return np.asarray([values, self.other_figures], dtype=np.float64)


def model_and_data(n: int = 11) -> tuple[gn.Sequential, np.ndarray, np.ndarray]:
    gn.seed(0)
    model = gn.Sequential([gn.layers.Dense(4, 3)], device="cpu")
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.5), metrics=["accuracy"])
    x = np.random.default_rng(2).normal(size=(n, 4)).astype(np.float32)
    return model, x, np.arange(n) % 3


def gradient(model: gn.Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The mean gradient of a batch, the model left as it was."""
    saved = model.flat_grads.copy()
    model.compute_gradients(x, y)
    grad = model.flat_grads.copy()
    model.flat_grads[...] = saved
    return grad


@pytest.mark.parametrize("comm", [None, dist.SingleCommunicator()])
def test_one_rank_is_the_identity(comm, tmp_path):
    model, _, _ = model_and_data()
    ranks = dist.Ranks(comm, 90, 16)
    assert ranks.single and ranks.writer and ranks.scope == "" and ranks.local_batch_size == 16
    cbs = [gn.callbacks.CSVLogger(tmp_path / "log.csv")]
    assert ranks.callbacks(cbs) == cbs
    order = np.arange(90)[::-1]
    assert ranks.local_order(order) is order
    with ranks.stepping(model, model) as runner:
        assert runner is model and "reduce_gradients" not in vars(model)
    tally = Tally(np)
    tally.add(np.eye(3), np.array([0, 1, 0]), np.float32(0.5))
    assert ranks.logs(tally) == tally.logs() and ranks.mean_loss(tally) == tally.mean_loss()


def test_each_step_sends_its_share_of_the_global_batch_through_the_models_hook():
    """11 samples, global batch 8 on 2 ranks: rank 0 trains on 4 of the first batch (weight
    4/8) and 2 of the last 3 (weight 2/3); the hook sends weight × its gradient, gets the sum
    and the optimizer steps once on the sum."""
    model, x, y = model_and_data()
    other = np.random.default_rng(3).normal(size=model.flat_grads.shape).astype(np.float32)
    comm = TwoRanks(other)
    ranks = dist.Ranks(comm, len(x), 8)
    assert (ranks.local_batch_size, ranks.single, ranks.writer) == (4, False, True)
    order = ranks.local_order(np.arange(len(x)))
    assert order.tolist() == [0, 1, 2, 3, 8, 9]
    with ranks.stepping(model, model) as step:
        assert model.reduce_gradients == step.reduce_gradients
        for rows, weight in ((order[:4], 4 / 8), (order[4:], 2 / 3)):
            before = model.flat_params.copy()
            grad = gradient(model, x[rows], y[rows])
            out, loss = step.train_step(x[rows], y[rows])
            np.testing.assert_allclose(comm.sent[-1], weight * grad, rtol=1e-6)
            np.testing.assert_allclose(model.flat_params, before - 0.5 * (weight * grad + other),
                                       rtol=1e-5, atol=1e-6)
            assert np.isfinite(float(loss)) and out.shape == (len(rows), 3)
        assert step.batch == 2
        ranks.local_order(None)  # a new epoch starts from its first batch
        assert step.batch == 0
    assert "reduce_gradients" not in vars(model)  # the class's identity again
    assert comm.allreduce_calls == 2


def test_a_nan_loss_on_another_rank_skips_the_step_here_and_reports_nan():
    model, x, y = model_and_data()
    poisoned = np.zeros_like(model.flat_grads)
    poisoned[0] = np.nan  # what a rank whose loss was NaN sends
    ranks = dist.Ranks(TwoRanks(poisoned), len(x), 8)
    before = model.flat_params.copy()
    with ranks.stepping(model, model) as step:
        _, loss = step.train_step(x[:4], y[:4])
    assert np.isnan(float(loss))
    np.testing.assert_array_equal(model.flat_params, before)
    assert ranks.scope == " on some rank"


def test_a_nan_loss_here_marks_what_this_rank_sends():
    model, x, y = model_and_data()
    comm = TwoRanks(np.zeros_like(model.flat_grads))
    forward = model.loss.forward
    model.loss.forward = lambda out, target: (np.float32(np.nan), forward(out, target)[1])
    before = model.flat_params.copy()
    with dist.Ranks(comm, len(x), 8).stepping(model, model) as step:
        _, loss = step.train_step(x[:4], y[:4])
    assert np.isnan(comm.sent[0][0]) and np.isfinite(comm.sent[0][1:]).all()
    assert np.isnan(float(loss))
    np.testing.assert_array_equal(model.flat_params, before)


def test_a_hook_of_the_users_comes_back_after_training():
    model, x, _ = model_and_data()

    def own(flat_grads: np.ndarray) -> None:
        flat_grads *= 2

    model.reduce_gradients = own
    with dist.Ranks(TwoRanks(), len(x), 8).stepping(model, model):
        assert model.reduce_gradients is not own
    assert model.reduce_gradients is own


def test_figures_are_summed_over_the_ranks():
    tally = Tally(np)
    tally.add(np.eye(3), np.array([0, 1, 0]), np.float32(0.5))  # loss sum 1.5, 2 right, 3 seen
    ranks = dist.Ranks(TwoRanks(other_figures=[4.5, 1.0, 5.0]), 16, 8)
    assert ranks.logs(tally) == {"loss": 6.0 / 8, "accuracy": 3 / 8}
    ranks = dist.Ranks(TwoRanks(other_figures=[4.5, 5.0]), 16, 8)
    assert ranks.mean_loss(tally) == 6.0 / 8


def test_cuda_graph_is_ignored_with_a_warning_under_several_ranks():
    from gpunet.training.loop import one_process_graph

    with pytest.warns(RuntimeWarning, match=r"one process only; ignored with 2 ranks"):
        assert one_process_graph(True, dist.Ranks(TwoRanks(), 16, 8)) is False
    assert one_process_graph(True, dist.Ranks(None, 16, 8)) is True
    assert one_process_graph(False, dist.Ranks(TwoRanks(), 16, 8)) is False
