#!/usr/bin/env python3
"""Export cost and deployed inference speed: for the mlp and cnn of gpunet.reference_models,
the time to
write .npz, .safetensors and .onnx, the files' sizes, and inference on the 10,000 MNIST test
images by gpunet (`model.predict`, its defaults) and by onnxruntime on the CPU (batches of
1,024 like predict), each the median of `--repeats` runs after one warm-up.

    python scripts/benchmark_export.py               # needs pip install -e ".[interop]"
    python scripts/benchmark_export.py --images 200 --repeats 1 --json r.json   # quick check

Weights are freshly initialised (trained weights would change no time and no size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import gpunet as gn
from gpunet import reference_models as models


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `repeats` calls of fn, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ort_predict(session: Any, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    return np.concatenate([session.run(None, {"input": x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)])


def measure(name: str, x: np.ndarray, repeats: int, folder: Path) -> dict[str, Any]:
    import onnxruntime as ort

    gn.seed(0)
    model = models.MODELS[name](device="cpu")
    x = x.reshape(len(x), *model.input_shape)
    row: dict[str, Any] = {"model": name, "params": model.num_params, "images": len(x)}
    for suffix in ("npz", "safetensors", "onnx"):
        path = folder / f"{name}.{suffix}"
        write = (lambda p=path: model.export(p)) if suffix == "onnx" else \
            (lambda p=path: model.save(p))
        row[f"{suffix}_write_s"] = median_seconds(write, repeats)
        row[f"{suffix}_bytes"] = path.stat().st_size
    row["load_safetensors_s"] = median_seconds(
        lambda: gn.load_model(folder / f"{name}.safetensors", device="cpu"), repeats)
    session = ort.InferenceSession(str(folder / f"{name}.onnx"),
                                   providers=["CPUExecutionProvider"])
    row["gpunet_predict_s"] = median_seconds(lambda: model.predict(x), repeats)
    row["onnxruntime_s"] = median_seconds(lambda: ort_predict(session, x), repeats)
    row["max_abs_diff"] = float(np.abs(ort_predict(session, x) - model.predict(x)).max())
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | .npz | .safetensors | .onnx | export .onnx | gpunet predict | "
             "onnxruntime | max abs diff |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['params']:,} params) | {r['npz_bytes']:,} B | "
            f"{r['safetensors_bytes']:,} B | {r['onnx_bytes']:,} B | "
            f"{r['onnx_write_s'] * 1e3:.1f} ms | {r['gpunet_predict_s'] * 1e3:.1f} ms | "
            f"{r['onnxruntime_s'] * 1e3:.1f} ms | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--images", type=int, default=10_000, help="the first N test images")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    (_, _), (x, _) = gn.datasets.load_mnist(subset="5k")
    x = gn.datasets.to_float(x[:args.images])
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, x, args.repeats, Path(tmp)) for name in ("mlp", "cnn")]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
