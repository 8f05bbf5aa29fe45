"""Fixtures for the tests that run NVIDIA's and CuPy's real software without a GPU.

`real_cupy` is CuPy with a loadable NVRTC. Where CuPy is not installed the tests that need it
skip and say why, unless GPUNET_REQUIRE_CUPY=1 (set by .ci/run): then they fail, so CI cannot
pass without having run them."""

from __future__ import annotations

import os

import pytest


def _require() -> bool:
    return os.environ.get("GPUNET_REQUIRE_CUPY") == "1"


@pytest.fixture(scope="session")
def real_cupy():
    try:
        import cupy
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # ImportError, or NVRTC's shared library missing
        reason = (f"CuPy with NVRTC is not usable here ({type(exc).__name__}: {exc}); "
                  'pip install -e ".[test,gpu-ci]" installs it')
        if _require():
            pytest.fail(f"GPUNET_REQUIRE_CUPY=1 but {reason}")
        pytest.skip(reason)
    return cupy
