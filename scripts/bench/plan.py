"""Running the workers, each in its own subprocess (two libraries' thread pools in one process
fight over the cores), alternating the contenders round by round, and gathering their numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import common

SCRIPT = Path(__file__).resolve().parents[1] / "benchmark.py"
MARK = "BENCH_RESULT "
BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
WIDTH_FACTORS = (0.5, 1, 2, 4)


class WorkerError(RuntimeError):
    """A worker process failed; the message holds the end of its stderr."""


def run_worker(spec: dict[str, Any], threads: int) -> dict[str, Any]:
    """Run one task in a fresh Python process with `threads` BLAS/OpenMP threads."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise WorkerError(f"{spec['framework']} {spec['task']} {spec.get('model', '')} "
                          f"{spec.get('variant', '')} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(MARK):])


def worker_main(spec_json: str) -> int:
    """Entry point of a worker process: run the task, print its result as one JSON line."""
    spec = json.loads(spec_json)
    if spec["framework"] == "gpunet":
        from bench import gpunet_side as side
    else:
        from bench import torch_side as side
    result = getattr(side, spec["task"])(spec)
    print(MARK + json.dumps(result), flush=True)
    return 0


def contenders(model: str, device: str, with_torch: bool) -> list[tuple[str, str, str]]:
    """(name, framework, variant) of every run of one model, in the order they alternate."""
    runs = [("gpunet", "gpunet", "fit")]
    if device == "gpu":
        runs.append(("gpunet-preloaded", "gpunet", "preloaded"))
    if with_torch:
        runs.append(("pytorch", "torch", "preloaded" if device == "gpu" else "default"))
        if device == "gpu":
            runs.append(("pytorch-streaming", "torch", "streaming"))
        if model == "cnn":
            runs.append(("pytorch-channels_last", "torch", "channels_last"))
    return runs


def train_runs(base: dict[str, Any], model: str, rounds: int, with_torch: bool,
               log: Any) -> dict[str, dict[str, Any]]:
    """A B A B …: each round runs every contender once, each in its own process."""
    merged: dict[str, dict[str, Any]] = {}
    for r in range(rounds):
        for name, framework, variant in contenders(model, base["device"], with_torch):
            spec = {**base, "task": "train", "framework": framework, "model": model,
                    "variant": variant}
            res = run_worker(spec, base["threads"])
            log(f"  round {r + 1}/{rounds} {model} {name}: "
                + ", ".join(f"{s:.3f}" for s in res["epoch_s"]) + " s/epoch")
            m = merged.setdefault(name, {"epoch_s": [], "infer_s": [], "warmup_s": [],
                                         "memory": res["memory"]})
            for key in ("epoch_s", "infer_s", "warmup_s"):
                m[key] += res[key]
            if res["memory"]["peak_bytes"] > m["memory"]["peak_bytes"]:
                m["memory"] = res["memory"]
            m["loss"] = res["loss"]
    return merged


def summarize(model: str, runs: dict[str, dict[str, Any]], n_train: int, n_test: int,
              machine_gflops: float) -> dict[str, Any]:
    """Per run: epoch-time statistics, images/s, GFLOP/s, fraction of GEMM peak, memory."""
    flops, iflops = common.train_flops(model), common.infer_flops(model)
    out: dict[str, Any] = {"train_flops_per_image": flops, "infer_flops_per_image": iflops,
                           "runs": {}, "ratios": {}}
    for name, r in runs.items():
        st = common.stats(r["epoch_s"])
        inf = common.stats(r["infer_s"])
        gflops = flops * n_train / st["median"] / 1e9
        out["runs"][name] = {
            "epoch_s": st, "images_per_s": n_train / st["median"], "gflops": gflops,
            "gemm_fraction": gflops / machine_gflops, "infer_s": inf,
            "infer_images_per_s": n_test / inf["median"],
            "infer_gemm_fraction": iflops * n_test / inf["median"] / 1e9 / machine_gflops,
            "peak_mb": r["memory"]["peak_bytes"] / 2**20,
            "train_mb": r["memory"]["train_bytes"] / 2**20, "memory_kind": r["memory"]["kind"],
            "warmup_s": r["warmup_s"], "final_loss": r["loss"]}
    for name, r in out["runs"].items():
        if name.startswith("pytorch"):
            for g in ("gpunet", "gpunet-preloaded"):
                if g in out["runs"]:
                    key = f"{g}/{name}"
                    out["ratios"][key] = out["runs"][g]["epoch_s"]["median"] / \
                        r["epoch_s"]["median"]
                    out["ratios"][key + " inference"] = out["runs"][g]["infer_s"]["median"] / \
                        r["infer_s"]["median"]
    return out


def sweep_points(kind: str) -> list[dict[str, Any]]:
    if kind == "batch_size":
        return [{"batch_size": b} for b in BATCH_SIZES]
    return [{"batch_size": 128, "widths": [int(w * f) for w in common.MLP_WIDTHS]}
            for f in WIDTH_FACTORS]


def sweep(base: dict[str, Any], kind: str, model: str, n_train: int,
          with_torch: bool) -> dict[str, Any]:
    """Seconds per epoch of `n_train` images across batch sizes or hidden widths: each point
    one process per library, alternating (a warm-up epoch, then the best of two)."""
    out: dict[str, Any] = {"n_train": n_train, "points": {}}
    frameworks = [("gpunet", "gpunet", "fit")]
    if with_torch:
        frameworks.append(("pytorch", "torch", "preloaded" if base["device"] == "gpu"
                           else "default"))
    for point in sweep_points(kind):
        for name, framework, variant in frameworks:
            spec = {**base, "task": "sweep", "framework": framework, "model": model,
                    "variant": variant, "n_train": n_train, "points": [point], "epochs": 2}
            out["points"].setdefault(name, []).extend(
                run_worker(spec, base["threads"])["points"])
    return out


def gemm(base: dict[str, Any], with_torch: bool) -> dict[str, Any]:
    """Each library's float32 GEMM throughput; the machine's is the best of them."""
    out: dict[str, Any] = {}
    for framework in ("gpunet", "torch") if with_torch else ("gpunet",):
        out[framework] = run_worker({**base, "task": "gemm", "framework": framework},
                                    base["threads"])
    out["machine_gflops"] = max(v["gflops"] for v in out.values())
    return out
