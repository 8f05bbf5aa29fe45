"""Fixtures: `interpreted` routes the kernels' GPU branch to InterpretedKernel; `cp` is CuPy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gpunet import backend
from gpunet.kernels import _registry, activations, optim, pooling
from tests.kernels.interpreted import InterpretedKernel
from tests.kernels.raw_fixtures import raw_xp  # noqa: F401 - the raw kernels' fixture


@pytest.fixture
def interpreted(monkeypatch):
    """Route the kernels' GPU branch to InterpretedKernel, with a fresh kernel cache."""
    fake = SimpleNamespace(ElementwiseKernel=InterpretedKernel)
    monkeypatch.setattr(_registry, "_import_cupy", lambda: fake)
    monkeypatch.setattr(_registry, "_cache", {})
    monkeypatch.setattr(InterpretedKernel, "built", [])
    for module in (activations, optim, pooling):
        monkeypatch.setattr(module, "is_gpu_array", lambda a: True)
    return InterpretedKernel


@pytest.fixture(params=[pytest.param("cupy", marks=pytest.mark.gpu)])
def cp(request):
    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    return backend._import_cupy()
