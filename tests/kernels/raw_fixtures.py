"""The `raw_xp` fixture (import it into a test module): where gpunet's raw kernels run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gpunet import backend
from gpunet.kernels import _raw
from tests.kernels import host_compiled


@pytest.fixture(params=["host", pytest.param("cupy", marks=pytest.mark.gpu)])
def raw_xp(request, monkeypatch):
    """NumPy with the raw kernels compiled as C++ for the CPU (the CUDA source unchanged;
    skipped without g++), or CuPy on a real GPU (skipped without one)."""
    if request.param == "cupy":
        usable, reason = backend.gpu_status()
        if not usable:
            pytest.skip(f"no usable GPU: {reason}")
        return backend._import_cupy()
    if not host_compiled.available():
        pytest.skip("no C++ compiler (g++) to run the raw kernels on the host")
    monkeypatch.setattr(_raw, "_import_cupy",
                        lambda: SimpleNamespace(RawKernel=host_compiled.HostKernel))
    monkeypatch.setattr(_raw, "_cache", {})
    return np
