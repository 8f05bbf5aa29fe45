"""The PyTorch worker: the same models (same layer order as gpunet's), data, batch size, SGD
momentum 0.9 and softmax cross-entropy, in the idiomatic PyTorch training loop.

Variants: "nchw" (PyTorch's default layout) and "channels_last" (the cnn in NHWC memory); on a
GPU "preloaded" (data on the device) and "streaming" (batches copied from pinned host memory).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench import common


def build(model: str, widths: tuple[int, ...] = common.MLP_WIDTHS) -> Any:
    """gpunet's mlp or cnn as an nn.Sequential, in gpunet's layer order (pool before ReLU)."""
    from torch import nn

    if model == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(20, 40, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(640, 100), nn.ReLU(), nn.Linear(100, 10))
    layers: list[Any] = []
    sizes = [784, *widths]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))


class _Runner:
    """One model on one device with its optimizer, and an epoch loop."""

    def __init__(self, spec: dict[str, Any], widths: tuple[int, ...] = common.MLP_WIDTHS) -> None:
        import torch

        torch.manual_seed(spec["seed"])
        self.torch = torch
        self.dev = torch.device("cuda" if spec["device"] == "gpu" else "cpu")
        self.variant = spec["variant"]
        self.fmt = torch.channels_last if self.variant == "channels_last" else None
        self.net = build(spec["model"], widths).to(self.dev)
        if self.fmt is not None:
            self.net = self.net.to(memory_format=self.fmt)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.rng = np.random.default_rng(spec["seed"])
        self.pinned: tuple[Any, Any] | None = None

    def sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def place(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        """Tensors where the epoch loop gathers from: the device, or (pinned) host memory."""
        torch = self.torch
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        if self.dev.type == "cuda" and self.variant == "streaming":
            self.pinned = (torch.empty(xt.shape, dtype=xt.dtype, pin_memory=True),
                           torch.empty(yt.shape, dtype=yt.dtype, pin_memory=True))
        elif self.dev.type == "cuda":
            return xt.to(self.dev), yt.to(self.dev)
        return xt, yt

    def epoch(self, x: Any, y: Any, batch_size: int) -> tuple[float, float]:
        """One shuffled epoch; (seconds, mean loss)."""
        torch, F = self.torch, self.torch.nn.functional
        self.net.train()
        perm = torch.from_numpy(self.rng.permutation(len(x))).to(x.device)
        self.sync()
        t0 = time.perf_counter()
        if self.pinned is not None:  # streaming: gather into pinned memory, copy per batch
            xs, ys = self.pinned
            torch.index_select(x, 0, perm, out=xs)
            torch.index_select(y, 0, perm, out=ys)
        else:
            xs, ys = x.index_select(0, perm), y.index_select(0, perm)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.dev)
        correct = torch.zeros((), dtype=torch.int64, device=self.dev)
        for i in range(0, len(x), batch_size):
            xb = xs[i:i + batch_size].to(self.dev, non_blocking=True)
            yb = ys[i:i + batch_size].to(self.dev, non_blocking=True)
            if self.fmt is not None:
                xb = xb.contiguous(memory_format=self.fmt)
            self.opt.zero_grad(set_to_none=True)
            out = self.net(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            self.opt.step()
            loss_sum += loss.detach() * len(xb)
            correct += (out.argmax(1) == yb).sum()
        self.sync()
        return time.perf_counter() - t0, float(loss_sum) / len(x)

    def predict(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        """Outputs for x as a host array, as gpunet's predict returns them."""
        torch = self.torch
        self.net.eval()
        with torch.inference_mode():
            outs = []
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size].to(self.dev)
                if self.fmt is not None:
                    xb = xb.contiguous(memory_format=self.fmt)
                outs.append(self.net(xb))
            return torch.cat(outs).cpu().numpy()


def _set_threads(spec: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(spec["threads"])


class _Memory:
    """Peak memory: host RSS on the CPU, the CUDA caching allocator's peak on the GPU."""

    def __init__(self, torch: Any, cuda: bool) -> None:
        self.torch, self.cuda = torch, cuda
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = common.reset_peak_rss()

    def report(self) -> dict[str, Any]:
        if self.cuda:
            peak = self.torch.cuda.max_memory_allocated()
            return {"kind": "cuda_allocator", "peak_bytes": peak,
                    "pool_total_bytes": self.torch.cuda.max_memory_reserved(),
                    "train_bytes": peak - self.base}
        peak = common.peak_rss()
        return {"kind": "rss", "peak_bytes": peak, "train_bytes": peak - self.base}


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm-up epochs, then measured epochs, then inference timing on the test images."""
    _set_threads(spec)
    x, y, xt, yt = common.load_data(spec, "image" if spec["model"] == "cnn" else "flat")
    run = _Runner(spec)
    xs, ys = run.place(x, y)
    memory = _Memory(run.torch, run.dev.type == "cuda")
    seconds, loss = [], float("nan")
    for _ in range(spec["warmup"] + spec["epochs"]):
        s, loss = run.epoch(xs, ys, spec["batch_size"])
        seconds.append(s)
    mem = memory.report()
    xt_t = run.torch.from_numpy(xt)
    infer = common.time_repeats(lambda: run.predict(xt_t), spec["infer_repeats"], run.sync)
    return {"epoch_s": seconds[spec["warmup"]:], "warmup_s": seconds[:spec["warmup"]],
            "loss": loss, "infer_s": infer, "memory": mem}


def sweep(spec: dict[str, Any]) -> dict[str, Any]:
    """Per batch size or hidden width: a warm-up epoch, then the best of the measured ones."""
    _set_threads(spec)
    x, y, _, _ = common.load_data(spec, "image" if spec["model"] == "cnn" else "flat")
    out = []
    for point in spec["points"]:
        run = _Runner(spec, tuple(point.get("widths", common.MLP_WIDTHS)))
        xs, ys = run.place(x, y)
        run.epoch(xs, ys, point["batch_size"])
        best = min(run.epoch(xs, ys, point["batch_size"])[0] for _ in range(spec["epochs"]))
        out.append({**point, "epoch_s": best})
    return {"points": out}


def gemm(spec: dict[str, Any]) -> dict[str, Any]:
    """float32 n×n matmul throughput of PyTorch (MKL / oneDNN, or cuBLAS), in GFLOP/s."""
    import torch

    _set_threads(spec)
    dev = torch.device("cuda" if spec["device"] == "gpu" else "cpu")
    n = spec["gemm_n"]
    a = torch.from_numpy(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    a = a.to(dev)
    b, c = a.clone(), torch.empty_like(a)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    times = common.time_repeats(lambda: torch.matmul(a, b, out=c), spec["gemm_repeats"] + 2,
                                sync)[2:]
    return {"gflops": 2 * n ** 3 / min(times) / 1e9, "n": n}


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Whether PyTorch can use a CUDA device here."""
    import torch

    return {"cuda": bool(torch.cuda.is_available())}
