#!/usr/bin/env python3
"""The first minutes on a GPU, in one command (under 5 minutes on an H100/H200):

    pip install --no-deps -e .          # numpy, cupy-cuda1Nx, torch, pytest, tqdm already there
    GPUNET_DATA=/path/to/data python scripts/gpu_check.py OUT_DIR

Parts, each in its own subprocess with its own timeout, each reported even when another fails:
  env        Python, NumPy, CuPy, CUDA, PyTorch versions and the GPU's name
  pytest     `pytest -m gpu`: every GPU-marked test on the real device
  speed      gpunet's speed switches (docs/gpu_speed.md), one process: `fit` of the mlp and the
             cnn on synthetic images, the step eager vs one CUDA graph (fit(cuda_graph=True))
             with the graph's products from the GEMM kernel or direct cuBLAS
             (GPUNET_CAPTURE_GEMM=kernel|cublas), and for the cnn GPUNET_CONV_KERNELS=0|1;
             seconds per epoch, final loss, and whether the step was captured
  train      the mlp and the cnn on Fashion-MNIST for a few epochs on the GPU and on the CPU,
             compared (test accuracy and loss within tolerances: CuPy compiles with -ftz=true
             and fused multiply-adds, and the GPU draws dropout masks from CuPy's generator, so
             the two runs agree only statistically)
  benchmark  scripts/benchmark.py --device gpu against PyTorch eager in the same run (gpunet
             streaming vs preloaded, PyTorch preloaded vs streaming; the CUDA-graph switch on
             vs off where the benchmark has one, else "not available")
  distributed  `python -m gpunet.distributed.selftest` under mpiexec: the NCCL backend on one
             rank, the MPI backend on two ranks sharing the GPU (NCCL refuses two ranks on one
             GPU); "not available" without mpi4py/mpiexec (`pip install "gpunet[mpi]"`)
It writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.md, and exits 0 only if every part
passed or, like `distributed` without MPI, is not available there. `--fake-gpu` (used by the
tests) runs every part on the NumPy-backed CuPy stand-in
(tests/fake_cupy.py), so this script is exercised in CI without a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MARK = "GPU_CHECK_RESULT "
MODELS = ("mlp", "cnn")
# the speed part's settings: (label, fit(cuda_graph=), GPUNET_CAPTURE_GEMM, GPUNET_CONV_KERNELS)
SPEED = (("eager", False, "kernel", "0"), ("graph kernel", True, "kernel", "0"),
         ("graph cublas", True, "cublas", "0"), ("eager conv1", False, "kernel", "1"),
         ("graph kernel conv1", True, "kernel", "1"), ("graph cublas conv1", True, "cublas", "1"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--data-dir", help="folder holding fashion-mnist/ (default: $GPUNET_DATA)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per run (default 3)")
    p.add_argument("--train-subset", default="full", help="Fashion-MNIST training images")
    p.add_argument("--acc-tol", type=float, default=0.02,
                   help="largest |GPU - CPU| test accuracy (default 0.02)")
    p.add_argument("--loss-tol", type=float, default=0.15,
                   help="largest relative |GPU - CPU| test loss (default 0.15)")
    p.add_argument("--bench-rounds", type=int, default=2, help="benchmark rounds per model")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every timeout")
    p.add_argument("--budget", type=float, default=290,
                   help="seconds for everything (default 290): a part that would start later "
                        "is reported as not run, a running one is stopped at the budget")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: checks the script itself, measures nothing")
    p.add_argument("--pytest-args", default="", help="extra pytest arguments (split on spaces)")
    p.add_argument("--fake-gpu", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--part", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.part is None and args.out is None:
        p.error("the output folder is required")
    return args


# -- the parent: run each part as a subprocess, gather, write ---------------------------------

def run_part(args: argparse.Namespace, part: str, spec: dict, timeout: float) -> dict:
    """Run `part` in a child process; its result, or what went wrong, never an exception."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", part,
           "--spec", json.dumps(spec)] + (["--fake-gpu"] if args.fake_gpu else [])
    return _run(cmd, _timeout(args, timeout), parse=True)


def _timeout(args: argparse.Namespace, seconds: float) -> float:
    """The part's own timeout, cut to what is left of the budget."""
    left = getattr(args, "deadline", float("inf")) - time.perf_counter()
    return min(seconds * args.timeout_scale, left)


def _run(cmd: list[str], timeout: float, parse: bool, env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    if timeout < 5:
        return {"status": "not run", "error": "out of time (--budget)", "seconds": 0.0}
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return {"status": "timeout", "error": f"no result within {timeout:.0f} s",
                "stderr_tail": tail, "seconds": time.perf_counter() - t0}
    out = {"seconds": time.perf_counter() - t0, "exit_code": proc.returncode,
           "stderr_tail": proc.stderr[-2000:], "stdout_tail": proc.stdout[-3000:]}
    if not parse:
        return out
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        return {**out, "status": "error", "error": f"the part crashed (exit {proc.returncode})"}
    return {**out, **json.loads(lines[-1][len(MARK):])}


def pytest_part(args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
           *args.pytest_args.split()]
    res = _run(cmd, _timeout(args, 120), parse=False)
    counts = {k: int(n) for n, k in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|deselected)", res.get("stdout_tail", ""))}
    res["counts"] = counts
    if res.get("status") in ("timeout", "not run"):
        return res
    if res["exit_code"] == 0 and counts.get("passed", 0) > 0:
        res["status"] = "pass"
    elif res["exit_code"] == 0:
        res["status"] = "skipped"  # no GPU-marked test ran: on a GPU machine, a failure
        res["error"] = "every gpu test was skipped (is the GPU usable?)"
    else:
        res["status"] = "fail"
    return res


def train_part(args: argparse.Namespace, out: Path) -> dict:
    runs: dict[str, dict] = {}
    for model in MODELS:
        for device in ("gpu", "cpu"):
            spec = {"model": model, "device": device, "epochs": args.epochs,
                    "subset": args.train_subset, "data_dir": args.data_dir,
                    "dir": str(out / "train")}
            runs[f"{model}-{device}"] = run_part(args, "train", spec, 120)
    comparisons = {m: compare(runs[f"{m}-gpu"], runs[f"{m}-cpu"], args) for m in MODELS}
    ok = all(c["status"] == "pass" for c in comparisons.values())
    return {"status": "pass" if ok else "fail", "runs": runs, "comparisons": comparisons}


def compare(gpu: dict, cpu: dict, args: argparse.Namespace) -> dict:
    """GPU vs CPU: test accuracy within acc_tol, test loss within loss_tol (relative)."""
    if gpu.get("status") != "pass" or cpu.get("status") != "pass":
        return {"status": "fail", "error": "a run did not finish"}
    g, c = gpu["result"], cpu["result"]
    d_acc = abs(g["test_accuracy"] - c["test_accuracy"])
    d_loss = abs(g["test_loss"] - c["test_loss"]) / max(abs(c["test_loss"]), 1e-12)
    ok = d_acc <= args.acc_tol and d_loss <= args.loss_tol and g["device"] == "gpu"
    return {"status": "pass" if ok else "fail", "accuracy_diff": d_acc,
            "loss_rel_diff": d_loss, "gpu_device": g["device"],
            "speedup": c["seconds_per_epoch"] / max(g["seconds_per_epoch"], 1e-12)}


def speed_part(args: argparse.Namespace) -> dict:
    """The speed switches timed in one child (a first failing setting does not hide the rest)."""
    spec = {"n": 128 if args.quick else 12_800, "batch_size": 64 if args.quick else 128,
            "epochs": 1 if args.quick else 2, "fake": args.fake_gpu}
    res = run_part(args, "speed", spec, 75)
    runs = res.get("runs", {}).values()
    if res.get("status") == "pass" and any(r["status"] not in ("pass", "skipped") for r in runs):
        res["status"] = "fail"
    return res


def benchmark_part(args: argparse.Namespace, out: Path) -> dict:
    switch = graph_switch()
    settings = [None] if switch is None else switch[1]
    results = {}
    for i, setting in enumerate(settings):
        spec = {"json": str(out / f"benchmark-{i}.json"), "data_dir": args.data_dir,
                "rounds": args.bench_rounds, "quick": args.quick,
                "extra": [] if setting is None else setting}
        label = "default" if setting is None else " ".join(setting) or "switch off"
        if args.fake_gpu and setting:  # the stand-in's graph runs the GEMM kernel compiled
            spec["extra"] = [*setting, "--models", "mlp"]  # for one CPU core: too slow for cnn
        results[label] = run_part(args, "benchmark", spec, 240 / len(settings))
    ok = all(r.get("status") == "pass" for r in results.values())
    return {"status": "pass" if ok else "fail", "runs": results,
            "cuda_graph": "not available (scripts/benchmark.py has no CUDA-graph switch)"
            if switch is None else f"on vs off through {switch[0]}"}


def graph_switch() -> tuple[str, list[list[str]]] | None:
    """The benchmark's CUDA-graph option, if it has one: (option, the argument lists to run)."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    return parse_switch(proc.stdout)


def parse_switch(help_text: str) -> tuple[str, list[list[str]]] | None:
    """`--cuda-graph {on,off}` -> one run per choice; a plain `--cuda-graph` flag -> off, on."""
    m = re.search(r"(--[\w-]*graph[\w-]*)(?:[ =]\{([\w,-]+)\})?", help_text)
    if not m:
        return None
    if m.group(2):
        return m.group(1), [[m.group(1), c] for c in m.group(2).split(",")]
    return m.group(1), [[], [m.group(1)]]


# -- the children: one part each, result printed as one JSON line ------------------------------

def use_fake_gpu() -> None:
    """Route gpunet's CuPy to the stand-in (as tests/test_fake_gpu.py does)."""
    sys.path.insert(0, str(REPO))
    from _pytest.monkeypatch import MonkeyPatch

    from gpunet import backend
    from gpunet.kernels import _raw, _registry
    from tests import fake_cupy, fake_graph

    cp, cupyx = fake_cupy.gpu_module()
    fake_graph.install(MonkeyPatch(), cp)  # stream capture and graphs, raw kernels on the host
    backend._import_cupy = lambda: cp
    _registry._import_cupy = lambda: cp
    _raw._import_cupy = lambda: cp
    sys.modules["cupyx"] = cupyx
    backend.gpu_status.cache_clear()


def child_env() -> dict:
    """Versions and the device, each fact on its own (one failing does not hide the others)."""
    facts: dict[str, Any] = {"python": sys.version.split()[0]}
    probes = {
        "numpy": lambda: __import__("numpy").__version__,
        "cupy": lambda: __import__("cupy").__version__,
        "cuda_runtime": lambda: __import__("cupy").cuda.runtime.runtimeGetVersion(),
        "cuda_driver": lambda: __import__("cupy").cuda.runtime.driverGetVersion(),
        "gpu": lambda: __import__("cupy").cuda.runtime.getDeviceProperties(0)["name"].decode(),
        "torch": lambda: __import__("torch").__version__,
        "torch_cuda": lambda: __import__("torch").cuda.is_available(),
        "gpunet_gpu_status": lambda: list(__import__("gpunet").backend.gpu_status()),
    }
    for name, probe in probes.items():
        try:
            facts[name] = probe()
        except Exception as exc:
            facts[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return {"status": "pass", "facts": facts}


def child_train(spec: dict) -> dict:
    from gpunet import cli

    run_dir = Path(spec["dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"{spec['model']}-{spec['device']}"
    argv = ["--dataset", "fashion-mnist", "--model", spec["model"], "--device", spec["device"],
            "--epochs", str(spec["epochs"]), "--train-subset", str(spec["subset"]),
            "--seed", "0", "--verbose", "0", "--json", str(run_dir / f"{name}.json"),
            "--checkpoint", str(run_dir / f"{name}.checkpoint.npz")]
    if spec.get("data_dir"):
        argv += ["--data-dir", str(Path(spec["data_dir"]) / "fashion-mnist")]
    code = cli.main(argv)
    if code != 0:
        return {"status": "fail", "error": f"gpunet-train exited {code}"}
    return {"status": "pass", "result": json.loads((run_dir / f"{name}.json").read_text())}


def child_speed(spec: dict) -> dict:
    """Every SPEED setting that applies to each model: seconds per epoch after a warm-up
    epoch (the capture happens in it), the final loss, whether the step was captured."""
    import warnings

    import numpy as np

    import gpunet as gn
    from gpunet import reference_models

    rng = np.random.default_rng(0)
    n = spec["n"]
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    runs = {}
    for model in MODELS:
        for label, graph, products, conv in SPEED:
            if model == "mlp" and conv == "1":
                continue  # no convolution
            if spec["fake"] and graph and products == "cublas":
                runs[f"{model} {label}"] = {"status": "skipped",
                                            "error": "direct cuBLAS needs a real GPU"}
                continue
            os.environ.update(GPUNET_CAPTURE_GEMM=products, GPUNET_CONV_KERNELS=conv)
            try:
                gn.seed(0)
                net = getattr(reference_models, model)(device="gpu")
                net.compile(loss="crossentropy", optimizer="sgd")
                data = x.reshape(n, -1) if model == "mlp" else x
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    hist = net.fit(data, y, epochs=1 + spec["epochs"],
                                   batch_size=spec["batch_size"], verbose=0, cuda_graph=graph)
                fell_back = [str(w.message) for w in caught if "cuda_graph" in str(w.message)]
                h = hist.history
                runs[f"{model} {label}"] = {
                    "status": "fail" if fell_back or not np.isfinite(h["loss"][-1]) else "pass",
                    "epoch_s": min(h["seconds"][1:]), "loss": h["loss"][-1],
                    "captured": graph and not fell_back, "warnings": fell_back[:1]}
            except Exception as exc:  # reported; the next setting still runs
                runs[f"{model} {label}"] = {"status": "error",
                                            "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"status": "pass", "runs": runs}


def child_benchmark(spec: dict, fake: bool) -> dict:
    sys.path.insert(0, str(REPO / "scripts"))
    import benchmark
    from bench import plan

    argv = ["--device", "gpu", "--no-sweeps", "--json", spec["json"], *spec["extra"]]
    argv += ["--quick"] if spec["quick"] else ["--rounds", str(spec["rounds"])]
    if spec.get("data_dir"):
        argv += ["--data-dir", spec["data_dir"]]
    if fake:  # the stand-in lives in this process: run the workers here, without PyTorch CUDA
        argv.append("--no-torch")
        plan.run_worker = _in_process_worker
    code = benchmark.main(argv)
    if code != 0:
        return {"status": "fail", "error": f"benchmark exited {code}"}
    res = json.loads(Path(spec["json"]).read_text())
    return {"status": "pass", "ratios": {m: r["ratios"] for m, r in res["models"].items()},
            "epoch_s": {m: {n: run["epoch_s"]["median"] for n, run in r["runs"].items()}
                        for m, r in res["models"].items()}}


def _in_process_worker(spec: dict, threads: int) -> dict:
    from bench import gpunet_side

    return getattr(gpunet_side, spec["task"])(spec)


def child_main(args: argparse.Namespace) -> int:
    if args.fake_gpu:
        use_fake_gpu()
    spec = json.loads(args.spec or "{}")
    try:
        if args.part == "env":
            result = child_env()
        elif args.part == "train":
            result = child_train(spec)
        elif args.part == "speed":
            result = child_speed(spec)
        elif args.part == "benchmark":
            result = child_benchmark(spec, args.fake_gpu)
        else:
            raise ValueError(f"unknown part {args.part!r}")
    except Exception as exc:  # reported by the parent, which goes on with the next part
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    print(MARK + json.dumps(result, default=str), flush=True)
    return 0


# -- the summary -------------------------------------------------------------------------------

def markdown(res: dict) -> str:
    lines = ["# gpu_check", "", f"{res['started']}, {res['wall_s']:.0f} s"
             + (" (fake GPU: the NumPy stand-in, nothing measured)" if res["fake_gpu"] else ""),
             "", "| part | status | seconds |", "| --- | --- | --- |"]
    lines += [f"| {name} | {p.get('status')} | {p.get('seconds', 0):.0f} |"
              for name, p in res["parts"].items()]
    env = res["parts"]["env"].get("facts", {})
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in env.items()]
    lines += ["", "## pytest -m gpu", "", f"counts: {res['parts']['pytest'].get('counts')}"]
    lines += ["", "## GPU vs CPU training (Fashion-MNIST)", "",
              "| model | accuracy diff | loss rel. diff | GPU speed-up | status |",
              "| --- | --- | --- | --- | --- |"]
    for model, c in res["parts"]["train"].get("comparisons", {}).items():
        if "accuracy_diff" in c:
            lines.append(f"| {model} | {c['accuracy_diff']:.4f} | {c['loss_rel_diff']:.4f} | "
                         f"{c['speedup']:.2f}× | {c['status']} |")
        else:
            lines.append(f"| {model} | | | | {c['status']}: {c.get('error')} |")
    lines += ["", "## Speed switches (seconds per epoch, synthetic images)", "",
              "| model and setting | s/epoch | final loss | captured | status |",
              "| --- | --- | --- | --- | --- |"]
    for label, r in res["parts"].get("speed", {}).get("runs", {}).items():
        if "epoch_s" in r:
            lines.append(f"| {label} | {r['epoch_s']:.4f} | {r['loss']:.4f} | "
                         f"{r['captured']} | {r['status']} |")
        else:
            lines.append(f"| {label} | | | | {r['status']}: {r.get('error')} |")
    bench = res["parts"]["benchmark"]
    lines += ["", "## Benchmark (epoch time ratios, < 1: gpunet faster)", "",
              f"CUDA graph: {bench.get('cuda_graph')}", ""]
    for label, run in bench.get("runs", {}).items():
        lines.append(f"- {label}: {run.get('status')} {run.get('error', '')}".rstrip())
        for model, times in run.get("epoch_s", {}).items():
            lines += [f"  - {model} {k}: {v:.3f} s per epoch" for k, v in times.items()]
        for model, ratios in run.get("ratios", {}).items():
            lines += [f"  - {model} {k}: {v:.3f}" for k, v in ratios.items()]
    errors = [f"- {n}: {p['error']}" for n, p in res["parts"].items() if p.get("error")]
    return "\n".join(lines + ["", "## Errors", ""] + (errors or ["none"])) + "\n"


def distributed_part(args: argparse.Namespace) -> dict:
    """The distributed selftest under mpiexec (on the stand-in: the MPI backend on the CPU)."""
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    mpiexec = shutil.which("mpiexec", path=path)
    if importlib.util.find_spec("mpi4py") is None or mpiexec is None:
        return {"status": "not available", "error": "mpi4py or mpiexec is missing: pip install "
                '"gpunet[mpi]" (and nvidia-nccl-cu12 for the NCCL backend)'}
    device = "cpu" if args.fake_gpu else "gpu"
    runs = {}
    for label, ranks, backend in (("nccl, 1 rank", 1, "nccl"), ("mpi, 2 ranks", 2, "mpi")):
        if args.fake_gpu and backend == "nccl":
            runs[label] = {"status": "skipped", "error": "NCCL needs a real GPU"}
            continue
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "gpunet.distributed.selftest",
               "--backend", backend, "--device", device]
        res = _run(cmd, _timeout(args, 90), parse=False)
        res.setdefault("status", "pass" if res.get("exit_code") == 0 else "fail")
        if res["status"] == "fail" and "NCCL library" in res.get("stderr_tail", ""):
            res.update(status="skipped", error="CuPy finds no NCCL: pip install nvidia-nccl-cu12")
        runs[label] = res
    ok = all(r["status"] in ("pass", "skipped") for r in runs.values())
    return {"status": "pass" if ok else "fail", "runs": runs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part:
        return child_main(args)
    if args.quick:
        args.epochs, args.train_subset, args.acc_tol, args.loss_tol = 1, "600", 1.0, 10.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "fake_gpu": args.fake_gpu, "argv": sys.argv[1:] if argv is None else argv,
           "parts": {}}
    args.deadline = time.perf_counter() + args.budget * args.timeout_scale
    parts = {"env": lambda: run_part(args, "env", {}, 60),
             "pytest": lambda: pytest_part(args),
             "speed": lambda: speed_part(args),
             "train": lambda: train_part(args, out),
             "benchmark": lambda: benchmark_part(args, out),
             "distributed": lambda: distributed_part(args)}
    for name, part in parts.items():
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            res["parts"][name] = part()
        except Exception as exc:  # a bug here must not lose the other parts' results
            res["parts"][name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        res["parts"][name].setdefault("seconds", time.perf_counter() - started)
        print(f"gpu_check: {name} {res['parts'][name].get('status')}", file=sys.stderr)
    res["wall_s"] = time.perf_counter() - t0
    _write(out / "gpu_check.json", json.dumps(res, indent=1, default=str) + "\n")
    _write(out / "gpu_check.md", markdown(res))
    print(f"gpu_check: wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 0 if all(p.get("status") in ("pass", "not available")
                    for p in res["parts"].values()) else 1


def _write(path: Path, text: str) -> None:
    """Atomic: a reader never sees half a summary."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
