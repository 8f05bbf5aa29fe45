"""Shared fixtures: `xp` runs a test on NumPy and, marked `gpu`, on CuPy (skipped, and reported
as skipped, where no GPU is usable); `shared_data` points at the real data sets beside the repo."""

from __future__ import annotations

import os
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
