"""`benchmark.py --distributed N`: data-parallel scaling of gpunet's `fit` under `mpiexec`.

Three runs per model, each its own `mpiexec` (or plain) process group, on the same work:
  1 process × T threads    the ordinary single-process fit (the baseline a user has today);
  1 rank × T/N threads     the distributed code path with one rank;
  N ranks × T/N threads    data parallel: each rank a share of every global batch.
Scaling efficiency = images/s of N ranks / (N × images/s of 1 rank). The all-reduce time per
step is measured inside each rank (host time in `Communicator.allreduce_`, which includes
waiting for the slowest rank to arrive) and averaged over ranks.

The worker runs as `mpiexec -n N python scripts/bench/distributed.py --worker SPEC`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` when run as a script

from bench import common  # noqa: E402
from bench.plan import MARK, WorkerError  # noqa: E402

WORKER = Path(__file__).resolve()


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or \
        shutil.which("mpiexec")
    if found is None:
        raise WorkerError('--distributed needs mpiexec and mpi4py: pip install -e ".[mpi]"')
    return found


def launch(spec: dict[str, Any], ranks: int, threads: int) -> dict[str, Any]:
    """Run the worker on `ranks` MPI ranks (0: a plain process, not distributed)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    head = [_mpiexec(), "-n", str(ranks)] if ranks else []
    proc = subprocess.run([*head, sys.executable, str(WORKER), "--worker",
                           json.dumps({**spec, "distributed": bool(ranks)})], env=env,
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        where = f"on {ranks} rank(s)" if ranks else "in one process"
        raise WorkerError(f"distributed {spec['model']} {where} failed "
                          f"(exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(MARK):])


def worker(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Train warm-up + measured epochs; rank 0 returns the figures (others None)."""
    import gpunet as gn
    from bench import gpunet_side

    comm = gn.distributed.init() if spec["distributed"] else None
    gn.seed(spec["seed"])
    x, y, _, _ = common.load_data(spec, "image" if spec["model"] == "cnn" else "flat")
    net = gpunet_side.build(spec["model"], spec["device"])
    marks: dict[str, float] = {}

    class Mark(gn.callbacks.Callback):  # all-reduce counters at the first measured epoch
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if comm is not None and epoch == spec["warmup"]:
                marks.update(s=comm.allreduce_seconds, n=comm.allreduce_calls)

    hist = net.fit(x, y, epochs=spec["warmup"] + spec["epochs"], batch_size=spec["batch_size"],
                   verbose=0, callbacks=[Mark()], distributed=comm)
    out = {"epoch_s": hist.history["seconds"][spec["warmup"]:], "loss": hist.history["loss"][-1]}
    if comm is not None and comm.size > 1:
        steps = comm.allreduce_calls - marks["n"]
        per_step = (comm.allreduce_seconds - marks["s"]) / max(steps, 1)
        out["allreduce_ms"] = 1e3 * float(comm.allgather_floats([per_step]).mean())
        out["steps"] = steps
        out["gradient_floats"] = int(net.flat_grads.size)
        if comm.rank != 0:
            return None
    return out


def run(args: Any, log: Any) -> dict[str, Any]:
    n = args.distributed
    threads = args.threads or os.cpu_count() or 1
    per_rank = max(1, threads // n)
    spec = {"device": args.device, "batch_size": args.batch_size, "seed": args.seed,
            "data_dir": str(common.data_dir(args.data_dir)),
            "n_train": 2000 if args.quick else 60_000, "n_test": 1,
            "warmup": args.warmup, "epochs": args.epochs}
    res: dict[str, Any] = {"config": {**spec, "ranks": n, "threads": threads,
                                      "threads_per_rank": per_rank}, "models": {}}
    for model in args.models:
        runs = {}
        for name, ranks, t in ((f"1 process × {threads} thread(s)", 0, threads),
                               (f"1 rank × {per_rank} thread(s)", 1, per_rank),
                               (f"{n} ranks × {per_rank} thread(s)", n, per_rank)):
            log(f"{model}: {name}")
            r = launch({**spec, "model": model}, ranks, t)
            r["images_per_s"] = spec["n_train"] / statistics.median(r["epoch_s"])
            runs[name] = r
        one, many = list(runs.values())[1:]
        res["models"][model] = {
            "runs": runs,
            "scaling_efficiency": many["images_per_s"] / (n * one["images_per_s"]),
            "vs_single_process": many["images_per_s"] / list(runs.values())[0]["images_per_s"]}
    return res


def report(res: dict[str, Any]) -> str:
    c = res["config"]
    out = [f"distributed: Fashion-MNIST, {c['n_train']:,} training images, global batch "
           f"{c['batch_size']}, SGD momentum 0.9, {c['warmup']} warm-up + {c['epochs']} measured "
           f"epoch(s); {c['ranks']} ranks × {c['threads_per_rank']} thread(s) against one "
           f"process × {c['threads']}"]
    for model, m in res["models"].items():
        rows = [("run", "s/epoch", "images/s", "all-reduce ms/step", "steps")]
        for name, r in m["runs"].items():
            rows.append((name, f"{statistics.median(r['epoch_s']):.3f}",
                         f"{r['images_per_s']:,.0f}",
                         f"{r['allreduce_ms']:.3f}" if "allreduce_ms" in r else "–",
                         str(r.get("steps", "–"))))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        out += ["", f"{model}"] + ["  ".join(f"{v:<{w}}" if i == 0 else f"{v:>{w}}"
                                             for i, (v, w) in enumerate(zip(row, widths,
                                                                            strict=True)))
                                   for row in rows]
        out.append(f"  scaling efficiency {100 * m['scaling_efficiency']:.0f}% (N ranks / N × 1 "
                   f"rank); {m['vs_single_process']:.2f}× the single process")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        result = worker(json.loads(sys.argv[2]))
        if result is not None:
            print(MARK + json.dumps(result), flush=True)
    else:
        sys.exit("usage: run through scripts/benchmark.py --distributed N")
