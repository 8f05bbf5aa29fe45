"""Check a distributed setup end to end: `mpiexec -n N python -m gpunet.distributed.selftest`.

    mpiexec -n 2 python -m gpunet.distributed.selftest --backend mpi --device cpu
    mpiexec -n 2 python -m gpunet.distributed.selftest --backend nccl --device gpu  # 2 GPUs
    mpiexec -n 1 python -m gpunet.distributed.selftest --backend nccl --device gpu  # 1 GPU

Checks that an all-reduce and a broadcast of arrays on the device give the right values, that
a small model trained on all ranks ends where one process ends (rank 0 trains the reference),
and that evaluate gives every rank the whole set's figures; then times the all-reduce of the
flat gradient of the two reference models. Rank 0 prints one line per check and a JSON
summary; any failure ends every rank with exit status 1. (NCCL needs one GPU per rank: on a
machine with one GPU run NCCL with one rank, and two ranks with --backend mpi.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

import gpunet as gn
from gpunet import distributed as dist


def _toy(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 20)).astype(np.float32)
    return x, (x @ rng.standard_normal((20, 4))).argmax(axis=1)


def _model(device: str) -> Any:
    gn.seed(1)
    L = gn.layers
    model = gn.Sequential([L.Dense(20, 32), L.ReLU(), L.Dense(32, 4)], device=device)
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.05, momentum=0.9),
                  metrics=["accuracy"])
    return model


def check_collectives(comm: dist.Communicator, xp: Any) -> str:
    a = xp.arange(1000, dtype=np.float32) * (comm.rank + 1)
    comm.allreduce_(a)
    want = np.arange(1000, dtype=np.float32) * (comm.size * (comm.size + 1) / 2)
    if not np.array_equal(gn.backend.to_numpy(a), want):
        raise AssertionError("all-reduce of a device array gave wrong values")
    b = xp.full(10, comm.rank, dtype=np.float64)
    comm.bcast_(b)
    if not np.array_equal(gn.backend.to_numpy(b), np.zeros(10)):
        raise AssertionError("broadcast of a device array did not give rank 0's values")
    return "all-reduce and broadcast of device arrays: right values"


def check_training(comm: dist.Communicator, device: str) -> str:
    x, y = _toy()
    ref = _model(device) if comm.rank == 0 else None
    if ref is not None:
        ref.fit(x, y, epochs=3, batch_size=20, verbose=0)
    model = _model(device)
    model.fit(x, y, epochs=3, batch_size=20, verbose=0, distributed=comm)
    figures = model.evaluate(x, y, distributed=comm)
    if ref is not None:
        diff = float(np.abs(gn.backend.to_numpy(model.flat_params - ref.flat_params)).max())
        if diff > 1e-4:
            raise AssertionError(f"{comm.size} ranks and one process differ by {diff:.3g}")
        if figures["accuracy"] != ref.evaluate(x, y)["accuracy"]:
            raise AssertionError("distributed evaluate differs from one process")
        return f"fit on {comm.size} ranks = one process (max |diff| {diff:.2g}); evaluate agrees"
    return ""


def time_allreduce(comm: dist.Communicator, device: str, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per all-reduce of each reference model's flat gradient."""
    from gpunet import reference_models

    out = {}
    for name in ("mlp", "cnn"):
        grads = reference_models.MODELS[name](device=device).flat_grads
        comm.allreduce_(grads)  # warm-up (NCCL builds its rings on first use)
        _sync(grads)
        comm.barrier()
        t0 = time.perf_counter()
        for _ in range(repeats):
            comm.allreduce_(grads)
        _sync(grads)
        out[f"{name} ({grads.size:,} floats) ms"] = 1e3 * (time.perf_counter() - t0) / repeats
    return out


def _sync(array: Any) -> None:
    if gn.backend.is_gpu_array(array):
        gn.backend.xp_of(array).cuda.get_current_stream().synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpunet.distributed.selftest",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("auto", "mpi", "nccl"), default="auto")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = p.parse_args(argv)
    comm = dist.init(args.backend)
    say = print if comm.rank == 0 else (lambda *a, **k: None)
    with dist.abort_on_error(comm, "selftest"):
        xp = gn.backend.get_xp(args.device)
        say(f"selftest: {comm.size} rank(s), backend {comm.backend}, device {args.device}",
            flush=True)
        lines = [check_collectives(comm, xp), check_training(comm, args.device)]
        timing = time_allreduce(comm, args.device)
        for line in filter(None, lines):
            say(f"  ok  {line}", flush=True)
        say("  all-reduce per step: " + ", ".join(f"{k} {v:.3f}" for k, v in timing.items()))
        say(json.dumps({"selftest": "passed", "ranks": comm.size, "backend": comm.backend,
                        "device": args.device, "allreduce_ms": timing}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
