"""What `fit` asks of the ranks, in one object per fit (`Ranks`), and the step every rank runs
(`RankStep`): the model's step interface, its gradient summed over the ranks by the model's
`reduce_gradients` hook. For `comm=None` or one rank every method is the identity, so `fit`
calls them without asking how many ranks there are. The maths: `gpunet.distributed.training`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpunet.distributed.comm import Communicator
from gpunet.distributed.training import (
    BatchPlan,
    check_in_sync,
    evaluate_sharded,
    is_single,
    is_writer,
    rank_callbacks,
    rank_seed,
    rank_stream,
    reduce_gradients,
    reduce_sums,
    start_fit,
)

_NO_DRAWS = contextlib.nullcontext()  # reusable: it holds no state


class Ranks:
    """One fit's view of `comm`: this rank's share of each batch, its callbacks, the figures
    summed over the ranks. n: training samples; batch_size: the global batch."""

    def __init__(self, comm: Communicator | None, n: int, batch_size: int) -> None:
        self.comm = None if is_single(comm) else comm
        self.single, self.writer = is_single(comm), is_writer(comm)
        self.scope = "" if self.single else " on some rank"  # where a NaN loss was, in messages
        self.plan = BatchPlan(comm, n, batch_size)
        self.local_batch_size = self.plan.local_batch_size
        self.random = False  # set in `stepping`: whether the model or augmentation draws
        self._step: RankStep | None = None

    def callbacks(self, callbacks: list[Any]) -> list[Any]:
        """The user's callbacks this rank runs (file writers on rank 0 only)."""
        return rank_callbacks(self.comm, callbacks)

    def start(self, model: Any, data: Any, **arguments: Any) -> None:
        """Before the first step: the ranks' data and arguments must match; then every rank
        takes rank 0's weights and generator state."""
        start_fit(self.comm, model, data.x, data.y, data.xv, data.yv, **arguments)

    @contextlib.contextmanager
    def stepping(self, model: Any, runner: Any, augment: Any = None) -> Iterator[Any]:
        """What runs the steps during the block: `runner` itself alone, else a `RankStep` of it,
        its all-reduce installed as the model's `reduce_gradients` (the previous hook comes
        back when the block ends)."""
        self.random = augment is not None or any(layer.uses_rng for layer in model.layers)
        if self.single:
            yield runner
            return
        self._step = RankStep(runner, model, self.comm, self.plan)
        own = model.__dict__.get("reduce_gradients")
        model.reduce_gradients = self._step.reduce_gradients
        try:
            yield self._step
        finally:
            if own is None:
                del model.reduce_gradients
            else:
                model.reduce_gradients = own
            self._step = None

    def local_order(self, order: np.ndarray | None) -> np.ndarray | None:
        """This epoch's samples of this rank, batch after batch (`order`: the shared
        permutation, None without shuffling); the steps count from the epoch's first batch."""
        if self._step is not None:
            self._step.batch = 0
        return self.plan.local_order(order)

    def seed(self) -> int:
        """A seed for CuPy's generator this epoch: one draw of the shared generator, made this
        rank's own (rank 0 and one process: the draw itself)."""
        return rank_seed(self.comm)

    def draws(self) -> Any:
        """Context for one step's host random draws (dropout, augmentation): this rank's own
        generator; nothing for one rank or a model that draws nothing."""
        if self.single or not self.random:
            return _NO_DRAWS  # the hot loop's common case: no new context object per step
        return rank_stream(self.comm, self.random)

    def mean_loss(self, tally: Any) -> float:
        """The running mean loss over all ranks (one small allgather with ranks)."""
        if self.single:
            return tally.mean_loss()
        total, count = reduce_sums(self.comm, float(tally.loss_sum), tally.seen)
        return total / max(count, 1)

    def logs(self, tally: Any) -> dict[str, float]:
        """`tally.logs()` over all ranks: bit-identical on every rank."""
        if self.single:
            return tally.logs()
        total, right, count = reduce_sums(self.comm, float(tally.loss_sum), int(tally.correct),
                                          tally.seen)
        logs = {"loss": total / max(count, 1)}
        if tally.accuracy:
            logs["accuracy"] = right / max(count, 1)
        return logs

    def evaluate(self, evaluate: Any, runner: Any, x: Any, y: Any,
                 batch_size: int) -> dict[str, float]:
        """Validation: each rank evaluates a part, the sums are all-reduced."""
        return evaluate_sharded(self.comm, evaluate, runner, x, y, batch_size, check=False)

    def check_in_sync(self, model: Any, where: str) -> None:
        """Refuse, on every rank, weights that differ between ranks."""
        check_in_sync(self.comm, model, where)


class RankStep:
    """The model's step interface on one rank of several. `train_step`: `runner` (the model,
    or its CPU Shards) computes this rank's shard's gradient, then the model's
    `apply_gradients` runs its `reduce_gradients` hook, `RankStep.reduce_gradients`: the
    gradient scaled by this rank's share of the global batch and summed over the ranks, one
    all-reduce. On the CPU a rank whose loss is not finite marks its share, so every rank skips
    that update and returns a NaN loss in the same step."""

    def __init__(self, runner: Any, model: Any, comm: Communicator, plan: BatchPlan) -> None:
        self.runner, self.model, self.comm, self.plan = runner, model, comm, plan
        self.xp = runner.xp
        self.batches = plan.full + (plan.last > 0)  # global batches per epoch
        self.batch = 0  # which global batch of the epoch the next step trains on
        self._finite = True

    def reduce_gradients(self, flat_grads: Any) -> bool:
        """The model's hook (b): False, on every rank alike, when some rank's loss was not
        finite (the model then skips the update)."""
        weight = self.plan.weight(self.batch % self.batches)
        self.batch += 1
        self._finite = reduce_gradients(self.comm, flat_grads, weight, self._finite)
        return self._finite

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        out, loss = self.runner.compute_gradients(x, y)
        self._finite = not self.model.on_cpu or math.isfinite(loss)  # free on the CPU
        self.model.apply_gradients(loss)
        if not self._finite:  # some rank's loss: every rank reports it in this step
            loss = self.xp.asarray(math.nan, dtype=loss.dtype)
        return out, loss

    def test_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        return self.runner.test_step(x, y)

    def predict_step(self, x: Any) -> Any:
        return self.runner.predict_step(x)
