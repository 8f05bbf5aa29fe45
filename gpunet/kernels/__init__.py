"""Fused elementwise kernels: a CuPy ElementwiseKernel on the GPU, the same formula in NumPy on
the CPU. Each kernel object is created once per process (CuPy then caches the compiled binary)."""

from gpunet.kernels.activations import (
    leaky_relu_backward,
    relu_backward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
)

__all__ = [
    "leaky_relu_backward",
    "relu_backward",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
]
