#!/usr/bin/env python3
"""gpunet vs PyTorch on identical work: the mlp and cnn of train_mnist.py on Fashion-MNIST's
60,000 training images, batch 128, float32, SGD momentum 0.9, softmax cross-entropy.

    python scripts/benchmark.py                   # CPU, both models, sweeps (about 7 minutes)
    python scripts/benchmark.py --device gpu      # CuPy vs PyTorch CUDA, streaming vs preloaded
    python scripts/benchmark.py --quick --json r.json   # 2,000 images, 1 epoch: the CI check
    python scripts/benchmark.py --distributed 2   # 2 MPI ranks against 1 (bench/distributed.py)
    python scripts/benchmark.py --device gpu --cuda-graph   # gpunet's fit runs as CUDA graphs

Every run is its own subprocess (two libraries' thread pools in one process fight over the
cores), the contenders alternate A B A B …, and each process trains a warm-up epoch first.
Reported per run: median seconds per epoch with min–max, images/s, the gpunet/PyTorch ratio,
peak memory (RSS on the CPU, the memory pool's peak on the GPU), inference time on the test
images and the fraction of the machine's GEMM throughput (measured in the same run) reached.
Then how the time per epoch grows with the batch size (32…1024) and the mlp's hidden width.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from typing import Any

from bench import plan, report

DEFAULT_ROUNDS = {"mlp": 5, "cnn": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--json", metavar="PATH", help="also write every number as JSON here")
    p.add_argument("--data-dir", help="folder holding fashion-mnist/ (default: $GPUNET_DATA, "
                                      "else ../shared/data relative to the repository)")
    p.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    p.add_argument("--rounds", type=int, help="alternating rounds (default: mlp 5, cnn 3)")
    p.add_argument("--epochs", type=int, default=1, help="measured epochs per process")
    p.add_argument("--warmup", type=int, default=1, help="warm-up epochs per process")
    p.add_argument("--threads", type=int, help="CPU threads for each library (default: all)")
    p.add_argument("--no-torch", action="store_true", help="gpunet only")
    p.add_argument("--no-sweeps", action="store_true", help="skip batch-size and width sweeps")
    p.add_argument("--sweep-images", type=int, default=30_000,
                   help="training images per epoch in the mlp sweeps")
    p.add_argument("--cnn-sweep-images", type=int, default=6_000,
                   help="training images per epoch in the cnn batch-size sweep")
    p.add_argument("--quick", action="store_true",
                   help="2,000 images, 1 round of 1 epoch, no sweeps: checks the harness works")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distributed", type=int, metavar="N",
                   help="data-parallel scaling instead: N MPI ranks (mpiexec) against 1 rank and "
                        "one process (needs the mpi extra)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="GPU: gpunet's fit runs (streaming) train with fit(cuda_graph=True), "
                        "each step one CUDA graph launch; the preloaded loop stays eager")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.models or any(m not in DEFAULT_ROUNDS for m in args.models):
        p.error(f"--models: expected a comma-separated subset of mlp,cnn, got {args.models}")
    for arg in ("batch_size", "rounds", "epochs", "threads", "sweep_images", "cnn_sweep_images",
                "distributed"):
        value = getattr(args, arg)
        if value is not None and value < 1:
            p.error(f"--{arg.replace('_', '-')} must be >= 1, got {value}")
    if args.cuda_graph and args.device != "gpu":
        p.error("--cuda-graph needs --device gpu")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def _check_setup(args: argparse.Namespace) -> str | None:
    """Why the benchmark cannot run (no GPU, no data), or None."""
    from bench import common

    import gpunet as gn

    if args.device == "gpu":
        usable, reason = gn.backend.gpu_status()
        if not usable:
            return f"--device gpu: {reason}"
    try:
        gn.datasets.load_fashion_mnist(common.data_dir(args.data_dir))
    except Exception as exc:
        return f"Fashion-MNIST: {exc}"
    return None


def _with_torch(args: argparse.Namespace, base: dict[str, Any]) -> bool:
    if args.no_torch or importlib.util.find_spec("torch") is None:
        return False
    if args.device == "cpu":
        return True
    return plan.run_worker({**base, "task": "probe", "framework": "torch"}, base["threads"])["cuda"]


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """Everything the benchmark measures, as one JSON-able dict."""
    import os

    from bench import common

    quick = args.quick
    base = {"device": args.device, "batch_size": args.batch_size, "seed": args.seed,
            "data_dir": str(common.data_dir(args.data_dir)),
            "threads": args.threads or os.cpu_count() or 1,
            "n_train": 2000 if quick else 60_000, "n_test": 2000 if quick else 10_000,
            "warmup": args.warmup, "epochs": args.epochs, "infer_repeats": 1 if quick else 3,
            "gemm_n": 512 if quick else (8192 if args.device == "gpu" else 2048),
            "gemm_repeats": 2 if quick else 5, "cuda_graph": args.cuda_graph}
    with_torch = _with_torch(args, base)
    res: dict[str, Any] = {"config": {**base, "quick": quick, "with_torch": with_torch},
                           "machine": report.machine()}
    log("measuring GEMM throughput")
    res["gemm"] = plan.gemm(base, with_torch)
    res["models"] = {}
    for model in args.models:
        rounds = 1 if quick else (args.rounds or DEFAULT_ROUNDS[model])
        log(f"{model}: {rounds} alternating round(s)")
        runs = plan.train_runs(base, model, rounds, with_torch, log)
        res["models"][model] = plan.summarize(model, runs, base["n_train"], base["n_test"],
                                              res["gemm"]["machine_gflops"])
    res["sweeps"] = {}
    if not (quick or args.no_sweeps):
        for model in args.models:
            n = min(args.sweep_images if model == "mlp" else args.cnn_sweep_images,
                    base["n_train"])
            log(f"{model}: batch-size sweep")
            res["sweeps"][f"{model} batch_size"] = plan.sweep(base, "batch_size", model, n,
                                                              with_torch)
        if "mlp" in args.models:
            log("mlp: hidden-width sweep")
            res["sweeps"]["mlp widths"] = plan.sweep(
                base, "widths", "mlp", min(args.sweep_images, base["n_train"]), with_torch)
    return res


def print_report(res: dict[str, Any]) -> None:
    mem = "peak RSS" if res["config"]["device"] == "cpu" else "peak pool"
    print(report.header(res))
    for name, m in res["models"].items():
        print()
        print(report.model_table(name, m, mem))
    for name, s in res["sweeps"].items():
        print()
        print(report.sweep_table(name, s, "widths" if name.endswith("widths") else "batch_size"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return plan.worker_main(args.worker)
    problem = _check_setup(args)
    if problem:
        print(f"benchmark: {problem}", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    if args.distributed:
        from bench import distributed
    try:
        res = distributed.run(args, log) if args.distributed else run(args, log)
    except plan.WorkerError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 1
    res["wall_s"] = time.perf_counter() - t0
    if args.distributed:
        print(distributed.report(res))
    else:
        print_report(res)
    print(f"\nwall time {res['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
