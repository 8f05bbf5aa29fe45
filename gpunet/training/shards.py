"""CPU data parallelism: each batch is cut into shards that run in threads, one model replica
per thread, while the BLAS library runs single-threaded inside each.

Why: on the CPU a small conv net spends much of its step in elementwise NumPy work (im2col,
col2im, pooling, activations) that runs on one core, and its GEMMs are too small to keep a
multi-threaded BLAS busy. NumPy releases the GIL inside ufuncs, copies and matmul, so shards
in threads keep every core on useful work: the cnn's step at batch 128 on 2 cores went from
19–28 ms to 14–15 ms (see docs/benchmarks.md).

`Shards` has the model's step interface (`train_step`, `test_step`, `predict_step`), so the
training loop runs either without knowing which. A replica is a model (`Sequential.replica`)
sharing the parameter buffer, so one optimizer step updates all; it owns its caches and, for
training, its gradient buffer. Each replica runs the model's own `compute_gradients` on its
shard with the loss gradient scaled by its share of the batch, and the replicas' gradients are
added into the model's, giving the gradient of the batch mean; then the model's
`apply_gradients` (reduction, optimizer step) runs once. A layer that changed its own state in
forward (beyond what backward needs, say running statistics) would see only its shard:
gpunet's layers do not; pass workers=1 for one that does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from gpunet import backend
from gpunet.checks import check, is_int


def blas_threads() -> int:
    """Threads the BLAS library NumPy calls would use (1 when no BLAS is found)."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(counts, default=1)


# Each shard costs about 0.6 ms of Python per step (the cnn at batch 1), run under the GIL
# and so one shard at a time, against 13.5 ms of GIL-free NumPy work for 64 images: "auto"
# keeps shards at 32 images or more so that the serial part stays small.
MIN_SHARD = 32


def resolve_workers(model: Any, workers: int | str, caller: str, batch_size: int) -> int:
    """`workers` as a thread count. "auto": for a model that holds a layer marked
    `parallel_shards` (conv and pooling layers), the BLAS thread count, at most one per
    MIN_SHARD samples of a batch; else 1. The GPU always gets 1."""
    if isinstance(workers, str) and workers == "auto":
        if not model.on_cpu:
            return 1
        if not any(getattr(layer, "parallel_shards", False) for layer in model.layers):
            return 1
        return max(1, min(blas_threads(), batch_size // MIN_SHARD))
    check(is_int(workers) and workers >= 1, caller, "workers", "a positive int or 'auto'",
          workers)
    if workers > 1 and not model.on_cpu:
        raise ValueError(f"{caller}: workers={workers} splits batches across CPU threads; "
                         f"this model is on {model.device!r} (use workers=1 or 'auto')")
    return int(workers)


@contextlib.contextmanager
def sharded(model: Any, workers: int, training: bool = True) -> Iterator[Any]:
    """What runs the steps: the model itself for one worker, else `Shards` of it (closed when
    the block ends); training=False for inference only (no gradient buffers)."""
    if workers == 1:
        yield model
        return
    with Shards(model, workers, training) as shards:
        yield shards


class Shards:
    """`workers` replicas of `model` (the first is the model itself) and their threads, with
    the model's step interface. BLAS runs single-threaded from creation until `close`."""

    def __init__(self, model: Any, workers: int, training: bool = True) -> None:
        self.model, self.xp, self.training = model, model.xp, training
        self.replicas = [model] + [model.replica(gradients=training) for _ in range(workers - 1)]
        self._random = any(layer.uses_rng for layer in model.layers)
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="gpunet-shard")
        self._blas = threadpool_limits(limits=1, user_api="blas")

    def close(self) -> None:
        """Wait for the threads and give BLAS its threads back."""
        self._pool.shutdown()
        self._blas.restore_original_limits()

    def __enter__(self) -> Shards:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, fn: Any, n: int) -> list[Any]:
        """fn(replica, start, stop) for each shard of n samples, shard 0 on this thread."""
        bounds = np.linspace(0, n, min(len(self.replicas), n) + 1).astype(int)
        # Seeds come from the main generator, in shard order, only for models that draw.
        seeds = backend.rng().integers(2**63, size=len(bounds) - 1) if self._random else None
        jobs = [(self.replicas[i], int(bounds[i]), int(bounds[i + 1]),
                 None if seeds is None else int(seeds[i])) for i in range(len(bounds) - 1)]

        def call(job: tuple[Any, int, int, int | None]) -> Any:
            replica, start, stop, seed = job
            if seed is None:
                return fn(replica, start, stop)
            with backend.local_rng(seed):
                return fn(replica, start, stop)

        futures = [self._pool.submit(call, job) for job in jobs[1:]]
        first = call(jobs[0])
        return [first] + [f.result() for f in futures]

    def compute_gradients(self, x: Any, y: Any) -> tuple[Any, Any]:
        """The model's `compute_gradients` for one batch, shard by shard: (output, mean loss),
        the batch's gradient left in `model.flat_grads`."""
        if not self.training:
            raise RuntimeError("Shards: opened with training=False, for inference only")
        n = len(x)

        def shard(replica: Any, a: int, b: int) -> tuple[Any, Any]:
            out, loss = replica.compute_gradients(x[a:b], y[a:b], share=(b - a) / n)
            return out, loss * ((b - a) / n)

        results = self._run(shard, n)
        total = self.model.flat_grads
        for replica in self.replicas[1:len(results)]:
            total += replica.flat_grads
        return _joined([r[0] for r in results]), sum(r[1] for r in results[1:]) + results[0][1]

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """`Sequential.train_step` with the gradient computed shard by shard."""
        out, loss = self.compute_gradients(x, y)
        self.model.apply_gradients(loss)
        return out, loss

    def test_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """`Sequential.test_step` with the outputs computed shard by shard."""
        out = self.predict_step(x)
        return out, self.model.loss.forward(out, y)[0]

    def predict_step(self, x: Any) -> Any:
        """`Sequential.predict_step`, shard by shard."""
        return _joined(self._run(lambda replica, a, b: replica.predict_step(x[a:b]), len(x)))


def _joined(outs: list[Any]) -> Any:
    return outs[0] if len(outs) == 1 else np.concatenate(outs)
