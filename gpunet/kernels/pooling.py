"""L2 pooling kernels (`layers.L2Pool2D`): y = sqrt(Σ x²) over each window, ∂y/∂x = x / y.

Each function dispatches on the array type as the activation kernels do: a CuPy array runs one
fused ElementwiseKernel, a NumPy array the twin formula written beside it. The pooling layer
calls them once per window offset (i, j) on strided views, so the accumulating ones take their
output as an argument and add into it in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.backend import is_gpu_array
from gpunet.kernels._registry import elementwise


def l2pool_add_square(v: Any, total: Any) -> Any:
    """total += v² (a window offset's share of the sum of squares), in place; returns total."""
    if is_gpu_array(total):
        kernel = elementwise("l2pool_add_square", "T v", "T total", "total += v * v")
        kernel(v, total)
        return total
    total += np.square(v)
    return total


def l2pool_scale(dy: Any, y: Any, out: Any = None) -> Any:
    """g = dy / y where y > 0, else 0: the factor of ∂C/∂x = g·x. A window of zeros (y = 0),
    where the norm has no derivative, passes no gradient rather than NaN."""
    if is_gpu_array(dy):
        kernel = elementwise("l2pool_scale", "T dy, T y", "T g", "g = y > T(0) ? dy / y : T(0)")
        return kernel(dy, y) if out is None else kernel(dy, y, out)
    if out is None:
        out = np.zeros_like(dy)
    else:
        out[...] = 0
    return np.divide(dy, y, out=out, where=y > 0)


def l2pool_add_grad(g: Any, v: Any, dx: Any) -> Any:
    """dx += g ⊙ v (a window offset's share of ∂C/∂x), in place; returns dx."""
    if is_gpu_array(dx):
        kernel = elementwise("l2pool_add_grad", "T g, T v", "T dx", "dx += g * v")
        kernel(g, v, dx)
        return dx
    dx += g * v
    return dx
