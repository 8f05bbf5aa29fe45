"""Test helpers: the PyTorch CPU oracle, array comparison across backends, peak memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from gpunet import backend


def host(a: Any) -> np.ndarray:
    return backend.to_numpy(a)


def close(actual: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(host(actual), host(expected), rtol=rtol, atol=atol)


def torch():
    """Import PyTorch (the test-only oracle) pinned to 2 threads."""
    import torch as t

    t.set_num_threads(2)
    return t


def peak_bytes(fn: Callable[[], Any]) -> int:
    """The most Python-allocated memory (NumPy arrays included) while `fn()` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
