"""Flatten: (N, C, H, W) → (N, C·H·W), the bridge from convolutions to dense layers."""

from __future__ import annotations

import math
from typing import Any

from gpunet.layers.base import Layer


class Flatten(Layer):
    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._prepare(x, getattr(x, "ndim", 2))
        if x.ndim < 2:
            raise ValueError(f"{self!r}: x must have a batch axis, got shape {tuple(x.shape)}")
        self._shape = tuple(x.shape) if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any) -> Any:
        shape = self._saved(self._shape, "input shape")
        dy = self._check_dy(dy, (shape[0], math.prod(shape[1:])))
        return dy.reshape(shape)

    def _clear_cache(self) -> None:
        self._shape = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)
