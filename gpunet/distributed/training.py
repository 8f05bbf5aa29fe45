"""What `fit` and `evaluate` call to train data-parallel: each a no-op (or the identity) for
`comm=None` or a 1-rank communicator, so the single-process path is unchanged.

The maths (the same as one process with the same global batch and seed):
- every rank holds the whole data set and draws the same permutation (rank 0's generator
  state is broadcast at the start);
- each global batch of B samples is cut into `size` contiguous shards whose sizes differ by at
  most one (`BatchPlan`); rank r trains on shard r;
- each rank's gradient is the mean over its shard, scaled by (its shard size / B) and summed by
  one all-reduce of the flat gradient buffer: the mean over the global batch, also when B does
  not divide evenly;
- every figure a decision depends on (training loss, validation loss and accuracy) is summed
  over ranks in rank order, so every rank sees the same bits and callbacks decide alike.

Randomness per rank (dropout masks, augmentation): with more than one rank, every step draws
one seed from the shared generator (the same draw on every rank, so the ranks' generators stay
in step) and rank r draws its masks and shifts from a generator seeded from (seed, r); on the
GPU each epoch seeds CuPy's generator the same way, with one draw, as one process does, so a
model without randomness draws exactly what one process draws. A run is reproducible for a
given seed and number of ranks; it differs from a run on another number of ranks only for
models that draw random numbers.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.distributed.comm import CollectiveError, Communicator

WRITER_CALLBACKS = ("ModelCheckpoint", "CSVLogger")


def is_single(comm: Communicator | None) -> bool:
    return comm is None or comm.size == 1


def is_writer(comm: Communicator | None) -> bool:
    """True on the one rank that writes files and prints (rank 0), and without a communicator."""
    return comm is None or comm.rank == 0


def shard_bounds(n: int, size: int) -> np.ndarray:
    """Boundaries of `size` contiguous parts of n items, the first n % size one larger."""
    q, r = divmod(n, size)
    return np.concatenate([[0], np.cumsum([q + (i < r) for i in range(size)])]).astype(np.int64)


class BatchPlan:
    """This rank's share of every global batch of an epoch of n samples."""

    def __init__(self, comm: Communicator | None, n: int, batch_size: int,
                 where: str = "fit") -> None:
        self.size, self.rank = (1, 0) if is_single(comm) else (comm.size, comm.rank)
        self.n, self.batch_size = n, batch_size
        self.full, self.last = divmod(n, batch_size)
        if self.size > 1 and (batch_size < self.size or 0 < self.last < self.size):
            small = batch_size if batch_size < self.size else self.last
            raise CollectiveError(
                f"{where}: with {self.size} ranks every global batch needs at least "
                f"{self.size} samples, one per rank, but batch_size={batch_size} over {n} "
                f"samples gives a batch of {small}; change batch_size or the number of samples")
        b = shard_bounds(batch_size, self.size)
        self.lo, self.hi = int(b[self.rank]), int(b[self.rank + 1])
        t = shard_bounds(self.last, self.size)
        self.last_lo, self.last_hi = int(t[self.rank]), int(t[self.rank + 1])
        self.local_batch_size = self.hi - self.lo

    def local_order(self, order: np.ndarray | None) -> np.ndarray | None:
        """The sample indices this rank trains on in an epoch, batch after batch (`order` is
        the epoch's permutation, None for no shuffling)."""
        if self.size == 1:
            return order
        if order is None:
            order = np.arange(self.n)
        cut = self.full * self.batch_size
        head = order[:cut].reshape(self.full, self.batch_size)[:, self.lo:self.hi].ravel()
        return np.concatenate([head, order[cut:][self.last_lo:self.last_hi]])

    def weight(self, batch: int) -> float:
        """This rank's share of global batch `batch` (its shard size / the batch size)."""
        if self.size == 1:
            return 1.0
        if batch < self.full:
            return (self.hi - self.lo) / self.batch_size
        return (self.last_hi - self.last_lo) / self.last


def reduce_gradients(comm: Communicator | None, flat_grads: Any, weight: float,
                     finite: bool = True) -> bool:
    """Sum `weight` × this rank's gradient over all ranks, in place: one all-reduce.

    `finite`: whether this rank's loss was finite (the CPU loop checks it before stepping). A
    rank whose loss was not sets the first element to NaN, so after the all-reduce every rank
    returns False together and skips the step; host buffers are read (one element) to see it,
    device buffers are not (the GPU loop checks its running loss every `log_every` batches).
    """
    if is_single(comm):
        return finite
    if not finite:
        flat_grads[:1] = np.nan
    elif weight != 1.0:
        flat_grads *= flat_grads.dtype.type(weight)
    comm.allreduce_(flat_grads)
    if not backend.is_gpu_array(flat_grads):
        return math.isfinite(float(flat_grads[0]))
    return True


def reduce_sums(comm: Communicator | None, *values: float) -> list[float]:
    """Each value summed over ranks, in rank order: bit-identical on every rank."""
    if is_single(comm):
        return [float(v) for v in values]
    return [float(v) for v in comm.allgather_floats([float(v) for v in values]).sum(axis=0)]


def rank_stream(comm: Communicator | None, random: bool) -> Any:
    """Context for one step's host random draws: this rank's own generator (see the module
    docstring). Draws nothing for one rank or a model without randomness."""
    if is_single(comm) or not random:
        return contextlib.nullcontext()
    return backend.local_rng(rank_seed(comm))


def rank_seed(comm: Communicator | None) -> int:
    """A seed for this rank from one draw of the shared generator (the same draw on every
    rank): rank 0 (and a single process) gets the draw itself, `int(backend.rng().integers(
    2**63))`, rank r a seed derived from (draw, r)."""
    seed = int(backend.rng().integers(2**63))
    if is_single(comm) or comm.rank == 0:
        return seed
    return int(np.random.default_rng([seed, comm.rank]).integers(2**63))


def rank_callbacks(comm: Communicator | None, callbacks: list[Any]) -> list[Any]:
    """The callbacks this rank runs: ranks other than 0 leave out those that only write files
    (ModelCheckpoint, CSVLogger, or any with `writes_files = True`); the rest see the same
    all-reduced logs on every rank and so decide alike."""
    if is_writer(comm):
        return list(callbacks)
    return [cb for cb in callbacks if type(cb).__name__ not in WRITER_CALLBACKS
            and not getattr(cb, "writes_files", False)]


def data_facts(x: Any, y: Any, name: str) -> dict[str, Any]:
    """What must match across ranks about a data set: size, sample shape, a label checksum."""
    labels = np.ascontiguousarray(backend.to_numpy(y))
    return {f"{name} samples": int(len(x)), f"{name} sample shape": list(x.shape[1:]),
            f"{name} labels crc32": zlib.crc32(labels.view(np.uint8))}


def agree(comm: Communicator | None, where: str, facts: dict[str, Any]) -> None:
    """Refuse, on every rank alike, when the ranks' `facts` (JSON values) differ."""
    if is_single(comm):
        return
    gathered = comm.allgather_json(facts)
    for key in gathered[0]:
        values = [g.get(key) for g in gathered]
        if any(v != values[0] for v in values):
            each = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise CollectiveError(f"{where}: the ranks were given different {key} ({each}); "
                                  "every rank must get the same arguments and data")


def start(comm: Communicator | None, model: Any, where: str, facts: dict[str, Any]) -> None:
    """Before the first step: check that every rank got the same arguments and data, then give
    every rank rank 0's parameters and random generator state."""
    if is_single(comm):
        return
    agree(comm, where, facts)
    backend.set_rng_state(comm.bcast_json(backend.get_rng_state()))
    comm.bcast_(model.flat_params)


def start_fit(comm: Communicator | None, model: Any, x: Any, y: Any, xv: Any, yv: Any,
              **arguments: Any) -> None:
    """`start` for fit: the facts compared are the training and validation data, the
    parameter count and the given (JSON-able) arguments."""
    if is_single(comm):
        return
    facts = {**data_facts(x, y, "training"), **arguments,
             "validation": None if xv is None else data_facts(xv, yv, "validation"),
             "parameters": int(model.flat_params.size)}
    start(comm, model, "fit", facts)


def check_in_sync(comm: Communicator | None, model: Any, where: str) -> None:
    """Refuse, on every rank, parameters that differ between ranks (a checksum per rank)."""
    if is_single(comm):
        return
    crc = zlib.crc32(np.ascontiguousarray(backend.to_numpy(model.flat_params)).view(np.uint8))
    sums = comm.allgather_floats([crc])[:, 0]
    if (sums != sums[0]).any():
        bad = [r for r in range(comm.size) if sums[r] != sums[0]]
        raise CollectiveError(f"{where}: the parameters of rank(s) {bad} differ from rank 0's")


def evaluate_sharded(comm: Communicator | None, evaluate: Any, runner: Any, x: Any, y: Any,
                     batch_size: int, check: bool = True) -> dict[str, float]:
    """`evaluate(runner, x, y, batch_size)` (mean loss and accuracy) over the whole set, each
    rank computing one contiguous part and the sums all-reduced; `check`: first compare the
    ranks' sets (sizes, sample shapes, a label checksum)."""
    if is_single(comm):
        return evaluate(runner, x, y, batch_size)
    if check:
        agree(comm, "evaluate", data_facts(x, y, "x"))
    bounds = shard_bounds(len(x), comm.size)
    lo, hi = int(bounds[comm.rank]), int(bounds[comm.rank + 1])
    sums = [0.0, 0.0]
    if hi > lo:
        part = evaluate(runner, x[lo:hi], y[lo:hi], batch_size)
        sums = [part["loss"] * (hi - lo), round(part["accuracy"] * (hi - lo))]
    loss_sum, correct = reduce_sums(comm, *sums)
    return {"loss": loss_sum / len(x), "accuracy": correct / len(x)}
