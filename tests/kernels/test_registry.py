"""The CUDA sources, run by a NumPy interpreter (no GPU) or by CuPy, match the twins; built once."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.kernels import _registry, activations, optim, pooling
from tests.helpers import close
from tests.kernels.helpers import ACTIVATIONS, OPTIM_KERNELS, POOLING
from tests.kernels.interpreted import _run_all


def test_cuda_sources_match_the_twins(interpreted):
    kernel_results = _run_all(np.array)
    assert set(interpreted.built) == set(ACTIVATIONS) | set(POOLING) | OPTIM_KERNELS
    with pytest.MonkeyPatch.context() as mp:
        for module in (activations, optim, pooling):
            mp.setattr(module, "is_gpu_array", lambda a: False)
        twin_results = _run_all(np.array)
    for label, arrays in twin_results.items():
        for actual, want in zip(kernel_results[label], arrays, strict=True):
            close(actual, want, rtol=1e-6, atol=1e-7)


def test_each_kernel_is_built_once(interpreted):
    _run_all(np.array)
    _run_all(np.array)
    assert sorted(interpreted.built) == sorted(set(ACTIVATIONS) | set(POOLING) | OPTIM_KERNELS)
    assert _registry.compiled_kernels() == sorted(interpreted.built)


def test_gpu_kernels_match_the_twins(cp):
    gpu = _run_all(cp.asarray)
    cpu = _run_all(np.array)
    for label, arrays in cpu.items():
        for actual, want in zip(gpu[label], arrays, strict=True):
            close(actual, want, rtol=1e-5, atol=1e-6)


def test_gpu_kernels_are_compiled_once_per_process(cp, monkeypatch):
    _run_all(cp.asarray)
    cached = dict(_registry._cache)
    assert set(ACTIVATIONS) | set(POOLING) | OPTIM_KERNELS <= set(_registry.compiled_kernels())
    built: list[tuple] = []
    real = cp.ElementwiseKernel
    monkeypatch.setattr(cp, "ElementwiseKernel", lambda *a: built.append(a) or real(*a))
    _run_all(cp.asarray)
    assert built == []
    assert all(_registry._cache[k] is v for k, v in cached.items())
