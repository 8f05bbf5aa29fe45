"""Shared fixtures: `xp` runs a test on NumPy and, marked `gpu`, on CuPy (skipped, and reported
as skipped, where no GPU is usable); `shared_data` points at the real data sets beside the repo;
`fake_gpu` makes the NumPy-backed CuPy stand-in of tests/fake_cupy.py gpunet's GPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gpunet import backend

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    if request.param == "cupy":
        usable, reason = backend.gpu_status()
        if not usable:
            pytest.skip(f"no usable GPU: {reason}")
        return backend._import_cupy()
    return np


@pytest.fixture
def device(xp) -> str:
    return "cpu" if xp is np else "gpu"


@pytest.fixture(autouse=True)
def _seeded():
    backend.seed(1234)


def shared_data_dir() -> Path:
    env = os.environ.get("GPUNET_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "mnist").is_dir():
        pytest.skip(f"real data sets not found at {path} (set GPUNET_DATA)")
    return path


@pytest.fixture
def fake_gpu(monkeypatch):
    """gpunet's GPU code paths (device arrays, CUDA kernels interpreted from source) run on
    tests/fake_cupy.py without a GPU; yields the stand-in `cupy` module."""
    from gpunet.kernels import _registry
    from tests import fake_cupy

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
