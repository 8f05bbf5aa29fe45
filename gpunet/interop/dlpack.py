"""Arrays from any library that speaks DLPack (PyTorch, JAX, CuPy, NumPy, ...), taken without a
copy where the memory is already where the model needs it.

`np.from_dlpack` / `cupy.from_dlpack` return views of the producer's memory: a PyTorch CPU tensor
becomes a NumPy array over the same bytes, a CUDA tensor a CuPy array over the same device
memory. Only a change of device (CPU tensor into a GPU model, or the reverse) copies.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from gpunet import backend


def is_dlpack(array: Any) -> bool:
    """True for an object that exports itself through the DLPack protocol."""
    return hasattr(array, "__dlpack__") and hasattr(array, "__dlpack_device__")


def _exportable(array: Any) -> Any:
    """PyTorch refuses to export a tensor that requires grad; its detached view shares memory."""
    if getattr(array, "requires_grad", False) and hasattr(array, "detach"):
        return array.detach()
    return array


def to_host(array: Any, what: str = "array") -> np.ndarray:
    """A NumPy array over `array`'s memory when it lives on the CPU, else a host copy."""
    if isinstance(array, np.ndarray) or not is_dlpack(array):
        return backend.to_numpy(array)
    array = _exportable(array)
    try:
        return np.from_dlpack(array)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        first = exc
    try:  # on another device: ask the producer for a CPU copy (DLPack 1.0)
        return np.from_dlpack(array, device="cpu", copy=True)
    except (BufferError, RuntimeError, TypeError, ValueError, NotImplementedError):
        pass
    if backend.is_gpu_array(array):
        return array.get()
    raise TypeError(f"{what}: cannot read {type(array).__name__} through DLPack ({first})")


def to_xp(array: Any, xp: ModuleType, what: str = "array") -> Any:
    """`array` on the backend `xp` (NumPy or CuPy), sharing memory when it already lives there."""
    if xp is np:
        return to_host(array, what)
    if is_dlpack(array) and not isinstance(array, np.ndarray):
        try:
            return xp.from_dlpack(_exportable(array))
        except (BufferError, RuntimeError, TypeError, ValueError):
            pass  # a CPU array for a GPU model: copied to the device below
    return xp.asarray(to_host(array, what))
