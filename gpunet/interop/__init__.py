"""Models in and out of gpunet: ONNX export, safetensors files, PyTorch modules, DLPack arrays.

Importing this package imports none of onnx, safetensors or torch: each function imports what it
needs when called (`pip install "gpunet[interop]"` for ONNX and safetensors tools).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def export_onnx(model: Any, path: str | os.PathLike, opset: int | None = None) -> Path:
    """Write `model` as a checked ONNX file (see `gpunet.interop.onnx`)."""
    from gpunet.interop import onnx

    return onnx.export(model, path, opset or onnx.OPSET)


def to_torch(model: Any) -> Any:
    """`model` as a `torch.nn.Sequential` with the same weights (see `gpunet.interop.torch`)."""
    from gpunet.interop import torch

    return torch.to_torch(model)


def from_torch(module: Any, input_shape: tuple[int, ...] | None = None,
               device: str = "auto") -> Any:
    """A gpunet `Sequential` from a `torch.nn.Sequential` (see `gpunet.interop.torch`)."""
    from gpunet.interop import torch

    return torch.from_torch(module, input_shape=input_shape, device=device)


__all__ = ["export_onnx", "from_torch", "to_torch"]
