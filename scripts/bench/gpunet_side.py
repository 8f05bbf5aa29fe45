"""The gpunet worker: trains through the library's own path and reports times and memory.

Variant "fit" is `model.fit` on host arrays (on a GPU: batches streamed to the device).
Variant "preloaded" makes the calls fit makes (forward, loss.forward, backward, optimizer.step
on the flat buffers) on data that already lives on the device, to show what streaming costs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench import common


class _Memory:
    """Peak memory: host RSS on the CPU; on the GPU the CuPy memory pool's size, which only
    grows (freed blocks stay cached), so it is the high-water mark of the bytes in use, also
    inside a step where sampling between steps cannot see."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.pool = xp.get_default_memory_pool() if xp is not np else None
        self.base = self.pool.used_bytes() if self.pool else common.reset_peak_rss()
        self.peak_used = self.base

    def sample(self) -> None:
        if self.pool:
            self.peak_used = max(self.peak_used, self.pool.used_bytes())

    def report(self) -> dict[str, Any]:
        if self.pool:
            self.sample()
            peak = max(self.peak_used, self.pool.total_bytes())
            return {"kind": "gpu_pool", "peak_bytes": peak,
                    "in_use_between_steps_bytes": self.peak_used,
                    "train_bytes": peak - self.base}
        peak = common.peak_rss()
        return {"kind": "rss", "peak_bytes": peak, "train_bytes": peak - self.base}


def _callback(memory: _Memory) -> Any:
    import gpunet as gn

    class Sample(gn.callbacks.Callback):
        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            memory.sample()

    return Sample()


def build(model: str, device: str, widths: tuple[int, ...] = common.MLP_WIDTHS) -> Any:
    """The model of train_mnist.py (or the mlp with other hidden widths), compiled for SGD
    momentum 0.9 and softmax cross-entropy."""
    import gpunet as gn
    import gpunet.reference_models

    if model == "cnn":
        net = gpunet.reference_models.cnn(device=device)
    elif tuple(widths) == common.MLP_WIDTHS:
        net = gpunet.reference_models.mlp(device=device)
    else:
        layers: list[Any] = []
        sizes = [784, *widths]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [gn.layers.Dense(a, b), gn.layers.ReLU()]
        layers.append(gn.layers.Dense(sizes[-1], 10))
        net = gn.Sequential(layers, device=device, input_shape=(784,))
    net.compile(loss=gn.losses.CrossEntropy(),
                optimizer=gn.optimizers.SGD(lr=0.01, momentum=0.9), metrics=["accuracy"])
    return net


def _sync(xp: Any) -> None:
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def preloaded_epochs(net: Any, x: Any, y: Any, batch_size: int, epochs: int,
                     memory: _Memory) -> tuple[list[float], float]:
    """The calls `fit` makes per batch, on device-resident data; (seconds per epoch, loss)."""
    import gpunet as gn

    xp = net.xp
    params, grads = [net.flat_params], [net.flat_grads]
    xbuf, ybuf = xp.empty_like(x), xp.empty_like(y)
    seconds, loss_sum = [], xp.zeros((), dtype=np.float64)
    for _ in range(epochs):
        order = xp.asarray(gn.backend.rng().permutation(len(x)))
        _sync(xp)
        t0 = time.perf_counter()
        xp.take(x, order, axis=0, out=xbuf)
        xp.take(y, order, axis=0, out=ybuf)
        loss_sum = xp.zeros((), dtype=np.float64)
        correct = xp.zeros((), dtype=np.int64)
        for i in range(0, len(x), batch_size):
            xb, yb = xbuf[i:i + batch_size], ybuf[i:i + batch_size]
            out = net.forward(xb, training=True)
            loss, grad = net.loss.forward(out, yb)
            net.backward(grad)
            net.optimizer.step(params, grads)
            loss_sum += loss * len(xb)
            correct += (out.argmax(axis=1) == yb).sum()
            memory.sample()
        _sync(xp)
        seconds.append(time.perf_counter() - t0)
    return seconds, float(loss_sum) / len(x)


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm-up epochs, then measured epochs, then inference timing on the test images."""
    import gpunet as gn

    gn.seed(spec["seed"])
    layout = "image" if spec["model"] == "cnn" else "flat"
    x, y, xt, yt = common.load_data(spec, layout)
    net = build(spec["model"], spec["device"])
    xp = net.xp
    total = spec["warmup"] + spec["epochs"]
    if spec["variant"] == "preloaded":
        xd, yd = xp.asarray(x), xp.asarray(y)
        memory = _Memory(xp)
        seconds, loss = preloaded_epochs(net, xd, yd, spec["batch_size"], total, memory)
    else:
        memory = _Memory(xp)
        hist = net.fit(x, y, epochs=total, batch_size=spec["batch_size"], verbose=0,
                       callbacks=[_callback(memory)] if xp is not np else None,
                       cuda_graph=bool(spec.get("cuda_graph")))
        seconds, loss = hist.history["seconds"], hist.history["loss"][-1]
    mem = memory.report()
    infer = common.time_repeats(lambda: net.predict(xt, batch_size=1024), spec["infer_repeats"],
                                lambda: _sync(xp))
    return {"epoch_s": seconds[spec["warmup"]:], "warmup_s": seconds[:spec["warmup"]],
            "loss": loss, "infer_s": infer, "memory": mem}


def sweep(spec: dict[str, Any]) -> dict[str, Any]:
    """Per batch size or hidden width: a warm-up epoch, then the best of the measured ones."""
    import gpunet as gn

    gn.seed(spec["seed"])
    layout = "image" if spec["model"] == "cnn" else "flat"
    x, y, _, _ = common.load_data(spec, layout)
    out = []
    for point in spec["points"]:
        widths = tuple(point.get("widths", common.MLP_WIDTHS))
        net = build(spec["model"], spec["device"], widths)
        hist = net.fit(x, y, epochs=1 + spec["epochs"], batch_size=point["batch_size"],
                       verbose=0)
        out.append({**point, "epoch_s": min(hist.history["seconds"][1:])})
    return {"points": out}


def gemm(spec: dict[str, Any]) -> dict[str, Any]:
    """float32 n×n matmul throughput of NumPy (OpenBLAS) or CuPy (cuBLAS), in GFLOP/s."""
    import gpunet as gn

    xp = gn.backend.get_xp(spec["device"])
    n = spec["gemm_n"]
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    b, c = a.copy(), xp.empty_like(a)
    times = common.time_repeats(lambda: xp.matmul(a, b, out=c), spec["gemm_repeats"] + 2,
                                lambda: _sync(xp))[2:]
    return {"gflops": 2 * n ** 3 / min(times) / 1e9, "n": n}
