"""Inverted dropout: during training zero each unit with probability `rate` and scale the rest
by 1/(1 − rate), so that inference is the identity."""

from __future__ import annotations

from typing import Any

from gpunet import backend
from gpunet.layers.base import Layer


class Dropout(Layer):
    uses_rng = True
    noise: Any = None  # uniform noise of the batch's shape, drawn outside a captured CUDA graph
    # (gpunet.training.cuda_graph sets it; None: draw here)

    def __init__(self, rate: float) -> None:
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self._mask = None
        self._shape: tuple[int, ...] | None = None  # the last training forward's shape

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._prepare(x, getattr(x, "ndim", 2))
        self._shape = tuple(x.shape) if training else None
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = 1.0 - self.rate
        if self.noise is not None and self.noise.shape == x.shape:
            u = self.noise
        elif self.xp is backend.np:
            u = backend.rng().random(x.shape, dtype=x.dtype)
        else:
            u = self.xp.random.random(x.shape, dtype=x.dtype)
        self._mask = (u < keep).astype(x.dtype)
        self._mask *= x.dtype.type(1.0 / keep)
        return x * self._mask

    def backward(self, dy: Any) -> Any:
        dy = self._check_dy(dy, self._saved(self._shape, "input shape"))
        if self.rate == 0:
            return dy
        return dy * self._saved(self._mask, "mask")

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def _clear_cache(self) -> None:
        self._mask = self._shape = None
