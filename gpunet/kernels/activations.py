"""Activation kernels. Each function takes an optional `out` and dispatches on the array type:
CuPy arrays run one fused ElementwiseKernel, NumPy arrays the twin formula with in-place ufuncs.

The backward kernels are the ⊙σ′(z) step of backpropagation, dx = dy ⊙ σ′(z): with dy = ∇ₐC
from the loss it is BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ); with dy = (wˡ⁺¹)ᵀδˡ⁺¹ from the Dense layer above it
completes BP2, δˡ = ((wˡ⁺¹)ᵀδˡ⁺¹) ⊙ σ′(zˡ). σ′ is computed from what forward kept (the output
a, or the input), in the CUDA source and in its NumPy twin alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.backend import is_gpu_array
from gpunet.kernels._registry import elementwise


def _launch(kernel: Any, *args: Any, out: Any = None) -> Any:
    """Run an ElementwiseKernel; CuPy takes either no output argument or an array, not None."""
    return kernel(*args) if out is None else kernel(*args, out)


def sigmoid_forward(z: Any, out: Any = None) -> Any:
    """a = σ(z) = 1 / (1 + exp(-z))."""
    if is_gpu_array(z):
        kernel = elementwise("sigmoid_fwd", "T z", "T a", "a = T(1) / (T(1) + exp(-z))")
        return _launch(kernel, z, out=out)
    out = np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def sigmoid_backward(dy: Any, a: Any, out: Any = None) -> Any:
    """BP1 / BP2's ⊙σ′: δ = dy ⊙ σ′(z), with σ′(z) = a(1 − a) from the stored output a."""
    if is_gpu_array(dy):
        kernel = elementwise("sigmoid_bwd", "T dy, T a", "T dx", "dx = dy * a * (T(1) - a)")
        return _launch(kernel, dy, a, out=out)
    out = np.subtract(1, a, out=out)  # the twin: (1 − a), ·a makes σ′, ⊙ dy makes δ
    out *= a
    out *= dy
    return out


def relu_backward(dy: Any, x: Any, out: Any = None) -> Any:
    """⊙σ′ for ReLU: dx = dy where x > 0, else 0 (x may be the ReLU's input or output)."""
    if is_gpu_array(dy):
        kernel = elementwise("relu_bwd", "T dy, T x", "T dx", "dx = x > T(0) ? dy : T(0)")
        return _launch(kernel, dy, x, out=out)
    return np.multiply(dy, x > 0, out=out)


def leaky_relu_backward(dy: Any, x: Any, alpha: float, out: Any = None) -> Any:
    """⊙σ′ for LeakyReLU: dx = dy where x > 0, else alpha·dy."""
    if is_gpu_array(dy):
        kernel = elementwise("leaky_relu_bwd", "T dy, T x, T alpha", "T dx",
                             "dx = x > T(0) ? dy : T(alpha * dy)")
        return _launch(kernel, dy, x, dy.dtype.type(alpha), out=out)
    slope = np.where(x > 0, dy.dtype.type(1), dy.dtype.type(alpha))
    return np.multiply(dy, slope, out=out)


def tanh_backward(dy: Any, a: Any, out: Any = None) -> Any:
    """⊙σ′ for tanh: dx = dy ⊙ (1 − a²), with a = tanh(z) the stored output."""
    if is_gpu_array(dy):
        kernel = elementwise("tanh_bwd", "T dy, T a", "T dx", "dx = dy * (T(1) - a * a)")
        return _launch(kernel, dy, a, out=out)
    out = np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)
    out *= dy
    return out
