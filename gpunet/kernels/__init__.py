"""Fused elementwise kernels: a CuPy ElementwiseKernel on the GPU, the same formula in NumPy on
the CPU (activations: the ⊙σ′ step of backpropagation; optim: parameter updates; pooling: L2
pooling). Each kernel object is created once per process (CuPy then caches the compiled binary)."""

from gpunet.kernels.activations import (
    leaky_relu_backward,
    relu_backward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
)
from gpunet.kernels.optim import (
    adagrad_update,
    adam_update,
    momentum_update,
    rmsprop_update,
    sgd_update,
)
from gpunet.kernels.pooling import l2pool_add_grad, l2pool_add_square, l2pool_scale

__all__ = [
    "adagrad_update",
    "adam_update",
    "l2pool_add_grad",
    "l2pool_add_square",
    "l2pool_scale",
    "leaky_relu_backward",
    "momentum_update",
    "relu_backward",
    "rmsprop_update",
    "sgd_update",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
]
