"""What every example shares: its command-line options, the data, plots and results files.

Each example is meant to be read top to bottom; this module holds only the plumbing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gpunet as gn

HERE = Path(__file__).resolve().parent
BOOK_DATA = "the book trained on 50,000 MNIST images (and validated on the other 10,000)"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every example takes; scripts add their own."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a few seconds: a small subset of the bundled digits, 1-2 epochs")
    p.add_argument("--out", default=str(HERE / "out"), help="folder for PNGs and JSON results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--data", choices=("auto", "5k", "full"), default="auto",
                   help="auto: the full 60,000 MNIST digits if on disk ($GPUNET_DATA) or "
                        "downloadable, else the 5,000 bundled ones (--quick always uses those)")
    return p


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str


def load(args: argparse.Namespace, layout: str = "flat", n_train: int | None = None,
         n_test: int | None = None) -> Data:
    """MNIST as float32 in [0, 1] and int32 labels, shuffled once with the seed.

    `n_train`/`n_test` keep only the first N (of the shuffled training set / the test set).
    """
    if args.quick or args.data == "5k":
        splits, source = gn.datasets.load_dataset("mnist-5k")
    elif args.data == "full":
        splits, source = gn.datasets.load_dataset("mnist")
    else:
        splits, source = gn.datasets.load_mnist_default()
    (x, y), (xt, yt) = splits
    order = np.random.default_rng(args.seed).permutation(len(x))
    x, y = x[order][:n_train], y[order][:n_train]
    xt, yt = xt[:n_test], yt[:n_test]
    text = (f"{source.title}: {len(x):,} training images, {len(xt):,} test images "
            f"(the official test set{'' if n_test is None else ', its first part'})")
    return Data(gn.datasets.to_float(x, layout), y.astype(np.int32),
                gn.datasets.to_float(xt, layout), yt.astype(np.int32), text)


def nielsen_net(scaled: bool, device: str) -> gn.Sequential:
    """784-30-10 sigmoid, as network.py and network2.py build it: weights N(0, 1) (network.py)
    or, `scaled`, N(0, 1/n_in) (network2.py's default); biases N(0, 1) in both."""
    L = gn.layers
    model = gn.Sequential([L.Dense(784, 30), L.Sigmoid(), L.Dense(30, 10), L.Sigmoid()],
                          device=device)
    rng = gn.backend.rng()
    weights = {}
    for i in (0, 2):
        layer = model.layers[i]
        scale = 1.0 / np.sqrt(layer.in_features) if scaled else 1.0
        weights[f"layer{i}.W"] = rng.standard_normal(layer.params["W"].shape) * scale
        weights[f"layer{i}.b"] = rng.standard_normal(layer.params["b"].shape)
    model.set_weights(weights)
    return model


def pyplot() -> Any:
    """matplotlib.pyplot (headless), or None with a clear message when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed, so no PNG is written; install it with "
              "pip install -e \".[plot]\" (or pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: str | os.PathLike, name: str) -> Path:
    """Write a figure as PNG into `out` (created if needed) and say where."""
    import matplotlib.pyplot as plt

    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def save_json(out: str | os.PathLike, name: str, results: dict[str, Any]) -> Path:
    """Write the results as JSON, atomically (a temporary file renamed into place)."""
    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {path}")
    return path


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table (also valid Markdown) for the terminal and the README."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"
