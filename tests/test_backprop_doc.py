"""docs/backprop.md: its walk through one step of a 784-30-10 sigmoid network gives exactly
Nielsen's four equations computed by hand (one sample at a time, as his network.py does), and
every file and function it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

DOC = REPO / "docs" / "backprop.md"
# `path.py` or `path.py::Name.attr`, optionally followed by (`name`, `name`) in that file
REF = re.compile(r"`((?:gpunet|tests)/[\w/]+\.py)(?:::([\w.]+))?`(?:\s*\(((?:`\w+`,?\s*)+)\))?")


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _references(text: str) -> list[tuple[str, str | None]]:
    """(file, dotted name or None) for every file and function the page names."""
    refs: list[tuple[str, str | None]] = []
    for path, name, listed in REF.findall(text):
        refs.append((path, name or None))
        refs += [(path, n) for n in re.findall(r"`(\w+)`", listed)]
    return refs


def test_every_file_and_function_the_doc_names_exists():
    text = DOC.read_text(encoding="utf-8")
    refs = _references(text)
    assert len({name for _, name in refs if name}) >= 15  # the parse found the page's names
    for path, name in refs:
        assert (REPO / path).is_file(), f"docs/backprop.md names {path}, which does not exist"
        if name is None:
            continue
        obj = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        for part in name.split("."):
            assert hasattr(obj, part), f"docs/backprop.md names {path}::{name}: no {part!r}"
            obj = getattr(obj, part)
        assert callable(obj), f"docs/backprop.md names {path}::{name}, not a function"


def test_each_equation_is_mapped_to_code():
    rows = {m[0]: m[1] for m in re.findall(r"^\| (BP[1-4]) \|(.*)$", DOC.read_text("utf-8"),
                                          flags=re.M)}
    assert sorted(rows) == ["BP1", "BP2", "BP3", "BP4"]
    for eq, row in rows.items():
        assert _references(row), f"{eq} names no file::function"


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _nielsen_backprop(w, b, x, y):
    """network.py's backprop for one sample (column vectors, w of shape (n_out, n_in)):
    ([δ per layer], [∂C/∂b per layer], [∂C/∂w per layer], [(wˡ⁺¹)ᵀδˡ⁺¹ per layer])."""
    activations, zs = [x], []
    for wl, bl in zip(w, b, strict=True):
        zs.append(wl @ activations[-1] + bl)
        activations.append(_sigmoid(zs[-1]))

    def sigmoid_prime(z):
        return _sigmoid(z) * (1 - _sigmoid(z))

    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])  # BP1, ∇ₐC = a − y for one sample
    deltas, backs = [delta], []
    for layer in range(len(w) - 2, -1, -1):
        backs.insert(0, w[layer + 1].T @ deltas[0])
        deltas.insert(0, backs[0] * sigmoid_prime(zs[layer]))  # BP2
    nabla_b = list(deltas)  # BP3
    nabla_w = [d @ a.T for d, a in zip(deltas, activations[:-1], strict=True)]  # BP4
    return deltas, nabla_b, nabla_w, backs


def _near(actual, expected):
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=2e-4,
                               atol=1e-5 * np.abs(expected).max())


@pytest.fixture(scope="module")
def walk():
    """Run the page's code blocks in order; keep the weights as they were before the step."""
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 4, "the walk is: setup, forward, backward, update"
    ns: dict = {}
    exec(blocks[0], ns)
    before = {(layer, k): np.array(ns[layer].params[k], dtype=np.float64)
              for layer in ("hidden", "output") for k in ("W", "b")}
    for block in blocks[1:]:
        exec(block, ns)
    return ns, before


def test_the_walk_computes_nielsens_four_equations(walk):
    ns, before = walk
    x, y = ns["x"].astype(np.float64), ns["y"].astype(np.float64)
    n = len(x)
    assert x.shape == (10, 784) and ns["a2"].shape == (10, 10) and ns["a1"].shape == (10, 30)
    # Nielsen's w is gpunet's W transposed; his b is a column
    w = [before["hidden", "W"].T, before["output", "W"].T]
    b = [before["hidden", "b"][:, None], before["output", "b"][:, None]]
    per_sample = [_nielsen_backprop(w, b, x[i][:, None], y[i][:, None]) for i in range(n)]

    outputs = np.stack([_sigmoid(w[1] @ _sigmoid(w[0] @ x[i][:, None] + b[0]) + b[1])[:, 0]
                        for i in range(n)])
    assert ns["cost"] == pytest.approx(((outputs - y) ** 2).sum() / (2 * n), rel=1e-5)
    _near(ns["grad_a"], (outputs - y) / n)  # ∇ₐC with the batch mean's 1/n
    # BP1 and BP2: gpunet's δ rows are Nielsen's per-sample δ, divided by n
    _near(ns["delta2"], np.stack([s[0][1][:, 0] for s in per_sample]) / n)
    _near(ns["back2"], np.stack([s[3][0][:, 0] for s in per_sample]) / n)
    _near(ns["delta1"], np.stack([s[0][0][:, 0] for s in per_sample]) / n)
    # BP3 and BP4 for every layer: the batch mean of Nielsen's per-sample gradients, transposed
    for i, name in enumerate(("hidden", "output")):
        layer = ns[name]
        _near(layer.grads["b"], sum(s[1][i][:, 0] for s in per_sample) / n)
        _near(layer.grads["W"], (sum(s[2][i] for s in per_sample) / n).T)
        assert np.abs(layer.grads["W"]).max() > 0  # a real gradient, not zeros on both sides


def test_the_walk_updates_like_update_mini_batch(walk):
    """w ← w − (η/m)·Σ nabla_w, Nielsen's update_mini_batch, on every weight and bias."""
    ns, before = walk
    x, y = ns["x"].astype(np.float64), ns["y"].astype(np.float64)
    w = [before["hidden", "W"].T, before["output", "W"].T]
    b = [before["hidden", "b"][:, None], before["output", "b"][:, None]]
    per_sample = [_nielsen_backprop(w, b, x[i][:, None], y[i][:, None]) for i in range(len(x))]
    eta, m = ns["eta"], len(x)
    for i, name in enumerate(("hidden", "output")):
        new_w = w[i] - eta / m * sum(s[2][i] for s in per_sample)
        new_b = b[i] - eta / m * sum(s[1][i] for s in per_sample)
        np.testing.assert_allclose(ns[name].params["W"], new_w.T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ns[name].params["b"], new_b[:, 0], rtol=1e-5, atol=1e-6)
        assert not np.allclose(ns[name].params["W"], before[name, "W"])  # the step moved it


def test_the_reference_parser_reads_what_the_doc_writes():
    sample = ("`gpunet/a.py::B.c` and `gpunet/k/d.py` (`e`, `f`) and `tests/t.py`.\n")
    assert _references(sample) == [("gpunet/a.py", "B.c"), ("gpunet/k/d.py", None),
                                   ("gpunet/k/d.py", "e"), ("gpunet/k/d.py", "f"),
                                   ("tests/t.py", None)]
    assert Path(DOC).is_file()
