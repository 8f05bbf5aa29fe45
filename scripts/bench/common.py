"""Shared by every benchmark worker: the data, FLOP counts, timing statistics, memory probes."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

MLP_WIDTHS = (256, 128, 64)
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_dir(arg: str | None) -> Path:
    """--data-dir, else $GPUNET_DATA, else ../shared/data relative to the repository."""
    if arg:
        return Path(arg)
    env = os.environ.get("GPUNET_DATA")
    return Path(env) if env else DEFAULT_DATA


def load_data(spec: dict[str, Any], layout: str) -> tuple[np.ndarray, ...]:
    """Fashion-MNIST as float32 in [0, 1]: (x, y, x_test, y_test), cut to the spec's sizes.
    layout "flat" gives (N, 784), "image" gives (N, 1, 28, 28)."""
    import gpunet as gn

    (x, y), (xt, yt) = gn.datasets.load_fashion_mnist(spec["data_dir"])
    n, nt = spec["n_train"], spec["n_test"]
    x, xt = gn.datasets.to_float(x[:n], layout), gn.datasets.to_float(xt[:nt], layout)
    return x, y[:n].astype(np.int64), xt, yt[:nt].astype(np.int64)


# -- FLOPs ------------------------------------------------------------------------------------
def _macs(model: str, widths: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Per-image multiply-adds of each GEMM-like layer in the forward pass, and which layers
    also compute an input gradient (all but the first)."""
    if model == "mlp":
        sizes = [784, *widths, 10]
        fwd = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    else:  # conv 5×5×20 on 28×28 → 24×24; pool; conv 5×5×40 on 12×12 → 8×8; pool; 640-100-10
        fwd = [24 * 24 * 20 * 25, 8 * 8 * 40 * 20 * 25, 640 * 100, 100 * 10]
    return fwd, [0] + [1] * (len(fwd) - 1)


def train_flops(model: str, widths: tuple[int, ...] = MLP_WIDTHS) -> int:
    """FLOPs (2 per multiply-add) of one training step per image: the forward GEMMs, the weight
    gradients and the input gradients of every layer but the first. Elementwise work and
    pooling are not counted; both libraries do the same work."""
    fwd, dx = _macs(model, widths)
    return 2 * (2 * sum(fwd) + sum(m * d for m, d in zip(fwd, dx, strict=True)))


def infer_flops(model: str, widths: tuple[int, ...] = MLP_WIDTHS) -> int:
    """FLOPs of one forward pass per image."""
    return 2 * sum(_macs(model, widths)[0])


# -- timing -----------------------------------------------------------------------------------
def stats(seconds: list[float]) -> dict[str, Any]:
    """Median, min, max and spread (max − min as % of the median) of measured times."""
    med = statistics.median(seconds)
    return {"median": med, "min": min(seconds), "max": max(seconds), "n": len(seconds),
            "spread_pct": 100.0 * (max(seconds) - min(seconds)) / med, "all": seconds}


def time_repeats(fn: Any, repeats: int, sync: Any = None) -> list[float]:
    """Wall seconds of `repeats` calls of fn() (sync() called before each clock read)."""
    out = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append(time.perf_counter() - t0)
    return out


# -- host memory ------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS counter (Linux ≥ 4.0) and return the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    """Peak RSS of this process in bytes (since the last reset_peak_rss)."""
    kb = _status_kb("VmHWM")
    if not kb:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024
