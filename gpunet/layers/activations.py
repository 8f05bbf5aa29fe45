"""Activation layers: a = σ(z) elementwise. Backward is the ⊙σ′(z) step of backpropagation,
run by the fused kernels of `gpunet.kernels.activations`:

- at the output layer it completes BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ), with ∇ₐC from the loss;
- below it completes BP2, δˡ = ((wˡ⁺¹)ᵀδˡ⁺¹) ⊙ σ′(zˡ), with (wˡ⁺¹)ᵀδˡ⁺¹ from Dense.backward.
"""

from __future__ import annotations

from typing import Any

from gpunet import kernels
from gpunet.layers.base import Layer


class _Activation(Layer):
    """Elementwise activation on inputs of any rank (2-D features or 4-D images)."""

    def __init__(self) -> None:
        super().__init__()
        self._saved_array = None

    def _in(self, x: Any) -> Any:
        ndim = getattr(x, "ndim", 2)
        return self._prepare(x, ndim if ndim in (2, 4) else 2)

    def _dy(self, dy: Any, saved: Any) -> Any:
        """dy on this layer's backend, checked against the saved array's shape (the kernels
        pick CPU or GPU by dy's type)."""
        return self._check_dy(dy, saved.shape)

    def _clear_cache(self) -> None:
        self._saved_array = None


class ReLU(_Activation):
    def forward(self, x: Any, training: bool = True) -> Any:
        y = self.xp.maximum(self._in(x), 0)
        self._saved_array = y if training else None
        return y

    def backward(self, dy: Any) -> Any:
        y = self._saved(self._saved_array, "output")
        return kernels.relu_backward(self._dy(dy, y), y)  # ⊙σ′: σ′ = 1 where y > 0, else 0


class LeakyReLU(_Activation):
    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not 0 <= alpha < 1:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._in(x)
        self._saved_array = x if training else None
        return self.xp.where(x > 0, x, x * x.dtype.type(self.alpha))

    def backward(self, dy: Any) -> Any:
        x = self._saved(self._saved_array)
        return kernels.leaky_relu_backward(self._dy(dy, x), x, self.alpha)  # ⊙σ′: 1 or alpha

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Sigmoid(_Activation):
    def forward(self, x: Any, training: bool = True) -> Any:
        y = kernels.sigmoid_forward(self._in(x))
        self._saved_array = y if training else None
        return y

    def backward(self, dy: Any) -> Any:
        a = self._saved(self._saved_array, "output")
        return kernels.sigmoid_backward(self._dy(dy, a), a)  # BP1 / BP2: dy ⊙ σ′, σ′ = a(1 − a)


class Tanh(_Activation):
    def forward(self, x: Any, training: bool = True) -> Any:
        y = self.xp.tanh(self._in(x))
        self._saved_array = y if training else None
        return y

    def backward(self, dy: Any) -> Any:
        a = self._saved(self._saved_array, "output")
        return kernels.tanh_backward(self._dy(dy, a), a)  # ⊙σ′, σ′ = 1 − a²


class Softmax(_Activation):
    """Softmax over the feature axis of (N, features) input. For training a classifier, prefer
    `losses.CrossEntropy` on logits, which fuses softmax with the loss and is more stable."""

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._prepare(x, 2)
        e = self.xp.exp(x - x.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
        self._saved_array = y if training else None
        return y

    def backward(self, dy: Any) -> Any:
        y = self._saved(self._saved_array, "output")
        dy = self._dy(dy, y)
        # Softmax mixes its inputs, so σ′ is a Jacobian: dx = J·dy with J = diag(y) − yyᵀ.
        return y * (dy - (dy * y).sum(axis=1, keepdims=True))
