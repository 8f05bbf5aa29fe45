"""`fake_gpu`: the NumPy-backed CuPy stand-in of tests/fake_cupy.py as gpunet's GPU, so that a
layer's GPU branch (device arrays, its CUDA kernels interpreted from source) runs without one."""

from __future__ import annotations

import sys

import pytest

from gpunet import backend
from gpunet.kernels import _registry
from tests import fake_cupy


@pytest.fixture
def fake_gpu(monkeypatch):
    saved = {k: v for k, v in sys.modules.items() if k.startswith("fakecupy")}
    cp, cupyx = fake_cupy.gpu_module()
    monkeypatch.setattr(backend, "_import_cupy", lambda: cp)
    monkeypatch.setattr(_registry, "_import_cupy", lambda: cp)
    monkeypatch.setattr(_registry, "_cache", {})
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    backend.gpu_status.cache_clear()
    yield cp
    backend.gpu_status.cache_clear()
    for k in [k for k in sys.modules if k.startswith("fakecupy")]:
        del sys.modules[k]
    sys.modules.update(saved)
