"""CPU data parallelism: each batch is cut into shards that run in threads, one model replica
per thread, while the BLAS library runs single-threaded inside each.

Why: on the CPU a small conv net spends much of its step in elementwise NumPy work (im2col,
col2im, pooling, activations) that runs on one core, and its GEMMs are too small to keep a
multi-threaded BLAS busy. NumPy releases the GIL inside ufuncs, copies and matmul, so shards
in threads keep every core on useful work: the cnn's step at batch 128 on 2 cores went from
19–28 ms to 14–15 ms (see docs/benchmarks.md).

A replica shares the model's parameter arrays (views of `flat_params`, so one optimizer step
updates all) and owns its caches and, for training, a gradient buffer laid out like
`flat_grads`; after backward the replicas' gradients are added into the model's. Each shard's
loss gradient is scaled by its share of the batch, so the sum is the gradient of the batch
mean. A layer that changed its own state in forward (beyond what backward needs, say running
statistics) would see only its shard: gpunet's layers do not; pass workers=1 for one that does.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from gpunet import backend


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
    if workers == "auto":
        if model.xp is not np:
            return 1
        if not any(getattr(layer, "parallel_shards", False) for layer in model.layers):
            return 1
        return max(1, min(blas_threads(), batch_size // MIN_SHARD))
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"{caller}: workers must be a positive int or 'auto', got {workers!r}")
    if workers > 1 and model.xp is not np:
        raise ValueError(f"{caller}: workers={workers} splits batches across CPU threads; "
                         f"this model is on {model.device!r} (use workers=1 or 'auto')")
    return workers


class Shards:
    """`workers` replicas of `model` (the first is the model itself) and their threads. BLAS
    runs single-threaded from creation until `close`."""

    def __init__(self, model: Any, workers: int, training: bool = True) -> None:
        self.model = model
        for layer in model.layers:  # nothing pending: no stale cache gets copied
            layer._clear_cache()
        self.replicas = [model.layers] + [_replica(model, training) for _ in range(workers - 1)]
        self.grads = [model.flat_grads] + [r.flat_grads for r in self.replicas[1:]] \
            if training else []
        self._random = any(layer.uses_rng for layer in model.layers)
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="gpunet-shard")
        self._blas = threadpool_limits(limits=1, user_api="blas")

    @classmethod
    def open(cls, model: Any, workers: int, training: bool = True) -> Shards | None:
        """Shards for more than one worker, else None (the plain single-threaded path);
        with training=False for inference only (no gradient buffers)."""
        return cls(model, workers, training) if workers > 1 else None

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
            layers, start, stop, seed = job
            if seed is None:
                return fn(layers, start, stop)
            with backend.stream_for(seed):
                return fn(layers, start, stop)

        futures = [self._pool.submit(call, job) for job in jobs[1:]]
        first = call(jobs[0])
        return [first] + [f.result() for f in futures]

    def forward(self, x: Any, training: bool = False) -> Any:
        """The model's output for x, computed shard by shard."""
        outs = self._run(lambda layers, a, b: _forward(layers, x[a:b], training), len(x))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Forward, loss and backward of one batch; returns (output, mean loss) and leaves
        the batch's gradient in `model.flat_grads` (the optimizer step is the caller's)."""
        if not self.grads:
            raise RuntimeError("Shards: opened with training=False, for inference only")
        loss_fn, n = self.model.loss, len(x)

        def shard(layers: list[Any], a: int, b: int) -> tuple[Any, Any]:
            out = _forward(layers, x[a:b], True)
            loss, grad = loss_fn.forward(out, y[a:b])
            if b - a != n:
                grad *= grad.dtype.type((b - a) / n)
            for layer in reversed(layers):
                grad = layer.backward(grad)
            return out, loss * ((b - a) / n)

        results = self._run(shard, n)
        for g in self.grads[1:len(results)]:
            self.grads[0] += g
        out = results[0][0] if len(results) == 1 else np.concatenate([r[0] for r in results])
        return out, sum(r[1] for r in results[1:]) + results[0][1]


def _forward(layers: list[Any], x: Any, training: bool) -> Any:
    for layer in layers:
        x = layer.forward(x, training=training)
    return x


class _Replica(list):
    """The layers of a replica, plus its gradient buffer."""

    flat_grads: Any = None


def _replica(model: Any, training: bool) -> _Replica:
    """Copies of the model's layers that share its parameter arrays but own everything else:
    for training, gradients in their own buffer; for inference none (they stay shared, unused)."""
    memo: dict[int, Any] = {id(a): a for layer in model.layers
                            for a in (*layer.params.values(), *layer.grads.values())}
    layers = _Replica(copy.deepcopy(model.layers, memo))
    if not training:
        return layers
    layers.flat_grads = np.zeros_like(model.flat_grads)
    offset = 0
    for layer in layers:
        for k, p in layer.params.items():
            size = int(np.prod(p.shape))
            layer.grads[k] = layers.flat_grads[offset:offset + size].reshape(p.shape)
            offset += size
    return layers
