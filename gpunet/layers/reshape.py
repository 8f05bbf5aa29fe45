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
        self._shape = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any) -> Any:
        return dy.reshape(self._saved(self._shape, "input shape"))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)
