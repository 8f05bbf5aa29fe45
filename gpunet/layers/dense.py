"""Dense (fully connected) layer: z = xW + b, with BP2 (its first half), BP3 and BP4 in
`backward`."""

from __future__ import annotations

import math
from typing import Any

from gpunet import backend
from gpunet.kernels import gemm
from gpunet.layers.base import Layer

INITS = ("he_uniform", "glorot_uniform", "normal")


class Dense(Layer):
    """`W` has shape (in_features, out_features) and `b` shape (out_features,)."""

    def __init__(self, in_features: int, out_features: int, init: str = "he_uniform") -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Dense: {arg} must be a positive int, got {value!r}")
        if init not in INITS:
            raise ValueError(f"Dense: init must be one of {INITS}, got {init!r}")
        self.in_features, self.out_features, self.init = in_features, out_features, init
        rng = backend.rng()
        if init == "he_uniform":
            limit = math.sqrt(6.0 / in_features)
        elif init == "glorot_uniform":
            limit = math.sqrt(6.0 / (in_features + out_features))
        if init == "normal":  # Nielsen's N(0, 1/n_in)
            w = rng.standard_normal((in_features, out_features)) / math.sqrt(in_features)
        else:
            w = rng.uniform(-limit, limit, (in_features, out_features))
        self._add_param("W", w)
        self._add_param("b", self.xp.zeros(out_features))
        self._x = None

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._prepare(x, 2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        self._x = x if training else None
        y = gemm.matmul(x, self.params["W"])  # CuPy: capturable in a CUDA graph (gemm.py)
        y += self.params["b"]
        return y

    def backward(self, dy: Any) -> Any:
        """Given δ = ∂C/∂z for z = xW + b (rows are samples), fill ∂C/∂W and ∂C/∂b, return ∂C/∂x.

        Nielsen writes z = wa + b with column vectors; here a batch is rows and W = wᵀ, so his
        δaᵀ reads xᵀδ and his (wˡ⁺¹)ᵀδˡ⁺¹ reads δWᵀ. δ already carries the loss's 1/n, so the
        sums over the batch below are the batch mean's gradients (see docs/backprop.md).
        """
        x = self._saved(self._x)
        dy = self._check_dy(dy, (x.shape[0], self.out_features))
        xp = self.xp
        gemm.matmul(x.T, dy, out=self.grads["W"])  # BP4: ∂C/∂W = xᵀδ (Nielsen: ∂C/∂w = δaᵀ)
        xp.sum(dy, axis=0, out=self.grads["b"])  # BP3: ∂C/∂b = δ, summed over the batch
        if not self.input_grad:
            return None
        # BP2, first half: (wˡ⁺¹)ᵀδˡ⁺¹; the activation below multiplies by σ′(zˡ)
        return gemm.matmul(dy, self.params["W"].T)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{self!r}: expected input features ({self.in_features},), "
                             f"got {tuple(input_shape)}")
        return (self.out_features,)

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init}

    def _clear_cache(self) -> None:
        self._x = None
