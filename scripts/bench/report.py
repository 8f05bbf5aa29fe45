"""What the benchmark prints: the machine, GEMM throughput, one table per model, the sweeps."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
from typing import Any


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def _gpu_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout else None


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare numbers: CPU, cores, library versions, BLAS, GPU."""
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "cpu": _cpu_name(), "nproc": os.cpu_count(), "python": platform.python_version(),
            "numpy": _version("numpy"), "numpy_blas": _blas(), "torch": _version("torch"),
            "cupy": _version("cupy-cuda12x") or _version("cupy-cuda13x") or _version("cupy"),
            "gpu": _gpu_name()}


def header(res: dict[str, Any]) -> str:
    c, m, g = res["config"], res["machine"], res["gemm"]
    lines = [f"machine: {m['cpu']}, {m['nproc']} cores; Python {m['python']}, NumPy "
             f"{m['numpy']} ({m['numpy_blas']}), PyTorch {m['torch'] or 'not installed'}"
             + (f"; GPU {m['gpu']}, CuPy {m['cupy']}" if c["device"] == "gpu" else ""),
             f"work: Fashion-MNIST, {c['n_train']:,} training images, batch {c['batch_size']}, "
             f"float32, SGD momentum 0.9, softmax cross-entropy; device {c['device']}, "
             f"{c['threads']} threads; {c['warmup']} warm-up epoch(s) per process, "
             f"inference on {c['n_test']:,} test images"
             + ("; gpunet's fit steps as CUDA graphs" if c.get("cuda_graph") else ""),
             "GEMM throughput (float32 square matmul, best of repeats): "
             + ", ".join(f"{k} {v['gflops']:.1f} GFLOP/s (n={v['n']})" for k, v in g.items()
                         if isinstance(v, dict))
             + f" → machine {g['machine_gflops']:.1f} GFLOP/s"]
    return "\n".join(lines)


def model_table(name: str, res: dict[str, Any], mem_label: str) -> str:
    rows = [("run", "s/epoch median", "min–max (n)", "spread", "images/s", "GFLOP/s",
             "% GEMM", f"{mem_label} MB", "+train MB", "infer s", "infer img/s")]
    for run, r in res["runs"].items():
        e = r["epoch_s"]
        rows.append((run, f"{e['median']:.3f}", f"{e['min']:.3f}–{e['max']:.3f} ({e['n']})",
                     f"{e['spread_pct']:.1f}%", f"{r['images_per_s']:,.0f}",
                     f"{r['gflops']:.1f}", f"{100 * r['gemm_fraction']:.1f}",
                     f"{r['peak_mb']:.0f}", f"{r['train_mb']:.0f}",
                     f"{r['infer_s']['median']:.3f}", f"{r['infer_images_per_s']:,.0f}"))
    out = [f"{name}  ({res['train_flops_per_image'] / 1e6:.2f} MFLOP per training image)",
           _table(rows)]
    out += [f"  ratio {k}: {v:.2f}×" for k, v in res["ratios"].items()]
    return "\n".join(out)


def sweep_table(title: str, sweep: dict[str, Any], key: str) -> str:
    names = list(sweep["points"])
    n = sweep["n_train"]
    rows = [(key, *(f"{nm} s/epoch" for nm in names),
             *(f"{nm} img/s" for nm in names), "ratio")]
    for i, point in enumerate(sweep["points"][names[0]]):
        secs = [sweep["points"][nm][i]["epoch_s"] for nm in names]
        label = "-".join(map(str, point["widths"])) if key == "widths" else str(point[key])
        ratio = f"{secs[0] / secs[1]:.2f}×" if len(secs) > 1 else "–"
        rows.append((label, *(f"{s:.3f}" for s in secs), *(f"{n / s:,.0f}" for s in secs),
                     ratio))
    return f"{title} ({n:,} images per epoch, best of 2 after a warm-up)\n" + _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    fmt = "  ".join(f"{{:<{w}}}" if c == 0 else f"{{:>{w}}}" for c, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in rows)
