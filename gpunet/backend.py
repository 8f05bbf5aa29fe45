"""Backend shim: choose CuPy (GPU) or NumPy (CPU) arrays, seed RNGs, move arrays.

"CuPy imports" and "a GPU is usable" are different facts (as in thinc/compat.py):
a GPU counts as usable only when CuPy imports, a CUDA device is present and a tiny
kernel actually runs on it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

DEVICES = ("auto", "cpu", "gpu")


@dataclass
class _Settings:
    """All of gpunet's process-wide settings, in one place: the float dtype layers compute in,
    the host random generator, and whether the "no GPU, using NumPy" warning was given."""

    floatx: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    warned_fallback: bool = False


_settings = _Settings()
_local = threading.local()  # per thread: a generator installed by `local_rng`


class DeviceError(RuntimeError):
    """Raised when `device="gpu"` is asked for and no GPU is usable."""


@functools.lru_cache(maxsize=1)
def _import_cupy() -> ModuleType | None:
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising at import time
        return None
    return cupy


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """Return (usable, reason). The reason says what is missing when not usable."""
    cp = _import_cupy()
    if cp is None:
        return False, ('CuPy is not installed: pip install "gpunet[gpu]" (CUDA 12) '
                       'or "gpunet[cuda13]"')
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"CuPy is installed but no CUDA driver or device was found ({exc})"
    if count < 1:
        return False, "CuPy is installed but no CUDA device is present"
    try:
        probe = cp.arange(4, dtype=cp.float32) * 2
        if float(probe.sum()) != 12.0:
            return False, "a test kernel on the CUDA device returned a wrong result"
    except Exception as exc:
        return False, f"a CUDA device is present but a test kernel failed to run ({exc})"
    return True, f"CUDA device 0 of {count}"


def gpu_available() -> bool:
    return gpu_status()[0]


def resolve_device(device: str = "auto") -> str:
    """Map "auto" | "cpu" | "gpu" to "cpu" or "gpu"; raise DeviceError for an unusable GPU."""
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    usable, reason = gpu_status()
    if usable:
        return "gpu"
    if device == "gpu":
        raise DeviceError(f"device='gpu' was requested but no GPU is usable: {reason}")
    if not _settings.warned_fallback:
        warnings.warn(f"gpunet: no usable GPU ({reason}); falling back to NumPy on the CPU",
                      RuntimeWarning, stacklevel=2)
        _settings.warned_fallback = True
    return "cpu"


def get_xp(device: str) -> ModuleType:
    """The array module for a resolved device name."""
    if resolve_device(device) == "gpu":
        return _import_cupy()
    return np


def xp_of(array: Any) -> ModuleType:
    """The array module an array belongs to (NumPy unless it is a CuPy array)."""
    cp = _import_cupy()
    if cp is not None and isinstance(array, cp.ndarray):
        return cp
    return np


def is_cpu(xp: ModuleType) -> bool:
    """True when `xp` is NumPy: the one spelling of "am I on the CPU" (on the CPU reading a
    value back is free; on the GPU it waits for the device)."""
    return xp is np


def is_gpu_array(array: Any) -> bool:
    return xp_of(array) is not np


def device_of(array: Any) -> str:
    return "gpu" if is_gpu_array(array) else "cpu"


def to_numpy(array: Any) -> np.ndarray:
    """Copy a device array to the host (no-op for NumPy)."""
    if is_gpu_array(array):
        return array.get()
    return np.asarray(array)


def to_xp(array: Any, xp: ModuleType, dtype: Any = None) -> Any:
    """Put an array on the backend `xp` (host→device or device→host as needed)."""
    if xp is np:
        out = to_numpy(array)
        return out if dtype is None else out.astype(dtype, copy=False)
    return xp.asarray(array, dtype=dtype)


# -- floating point precision ------------------------------------------------------------------
def floatx() -> np.dtype:
    """The dtype layers compute in: float32, or float64 inside `precision(np.float64)`."""
    return _settings.floatx


@contextlib.contextmanager
def precision(dtype: Any):
    """Temporarily compute in another float dtype (the gradient checker uses float64)."""
    old, _settings.floatx = _settings.floatx, np.dtype(dtype)
    try:
        yield
    finally:
        _settings.floatx = old


# -- random numbers ---------------------------------------------------------------------------
def seed(n: int) -> None:
    """Seed every generator gpunet uses: CPU runs with the same seed are bit-reproducible."""
    _settings.rng = np.random.default_rng(n)
    cp = _import_cupy()
    if cp is not None and gpu_available():
        cp.random.seed(n)


def rng() -> np.random.Generator:
    """The host generator used for weight init, shuffling and CPU dropout masks (inside a
    `local_rng` block: that block's own generator)."""
    return getattr(_local, "rng", None) or _settings.rng


@contextlib.contextmanager
def local_rng(seed: int) -> Iterator[np.random.Generator]:
    """Within this block, this thread's `rng()` is a new generator seeded with `seed`; the
    process-wide generator is neither used nor moved.

    The threads that share a batch on the CPU each draw from their own generator, its seed
    taken from the main generator in a fixed order, so a seeded run stays reproducible; the
    gradient checker draws the same dropout mask on every evaluation this way."""
    outer = getattr(_local, "rng", None)
    _local.rng = np.random.default_rng(seed)
    try:
        yield _local.rng
    finally:
        _local.rng = outer


def get_rng_state() -> dict:
    return _settings.rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _settings.rng.bit_generator.state = state
