"""Fused optimizer updates: each function updates the parameters `p` and the optimizer state
in place. CuPy arrays take ONE ElementwiseKernel launch per call; NumPy arrays run the same
formula as in-place ufuncs (`out=`) over two scratch buffers shaped like `p` (`scratch`, owned
by the caller so that a step allocates nothing; allocated per call when None).

Every rule first forms the effective gradient ĝ = g + wd·p + l1·sign(p): L2 weight decay added
to the gradient as PyTorch does, plus an L1 penalty. The caller's `g` is never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpunet.backend import is_gpu_array
from gpunet.kernels._registry import elementwise

Scratch = Sequence[Any] | None

_IN = "T g, T wd, T l1"
_GRAD = "T gg = g + wd * p + l1 * (T(p > T(0)) - T(p < T(0)));\n"

# name -> (extra scalar in_params, out_params, operation after ĝ is formed)
_RULES: dict[str, tuple[str, str, str]] = {
    "sgd": (", T lr", "T p", "p -= lr * gg;"),
    "sgd_momentum": (", T lr, T mu", "T p, T buf", "buf = buf * mu + gg;\np -= lr * buf;"),
    "sgd_nesterov": (", T lr, T mu", "T p, T buf",
                     "buf = buf * mu + gg;\np -= lr * (buf * mu + gg);"),
    "adagrad": (", T lr, T eps", "T p, T acc",
                "acc += gg * gg;\np -= lr * (gg / (sqrt(acc) + eps));"),
    "rmsprop": (", T lr, T rho, T omr, T eps", "T p, T sq",
                "sq = sq * rho + gg * gg * omr;\np -= lr * (gg / (sqrt(sq) + eps));"),
    "adam": (", T step, T omb1, T beta2, T omb2, T eps, T bc2", "T p, T m, T v",
             "m += omb1 * (gg - m);\nv = v * beta2 + gg * gg * omb2;\n"
             "p -= step * (m / (sqrt(v) / bc2 + eps));"),
}
# name -> the full (in_params, out_params, operation) of its ElementwiseKernel
SPECS = {name: (_IN + extra, outs, _GRAD + body) for name, (extra, outs, body) in _RULES.items()}


def _launch(name: str, p: Any, g: Any, scalars: Sequence[float], *state: Any) -> None:
    """Run the cached kernel `name`: scalars are cast to p's dtype so that T stays p.dtype."""
    kernel = elementwise(f"optim_{name}", *SPECS[name])
    t = p.dtype.type
    kernel(g, *(t(s) for s in scalars), p, *state)


def _buffers(p: np.ndarray, scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
    if scratch is None:
        return np.empty_like(p), np.empty_like(p)
    return scratch[0], scratch[1]


def _grad_np(p: np.ndarray, g: np.ndarray, wd: float, l1: float, s1: np.ndarray,
             s2: np.ndarray) -> np.ndarray:
    """ĝ written into s1 (s2 is clobbered), or `g` itself when there is no penalty."""
    if not wd and not l1:
        return g
    np.multiply(p, wd, out=s1)
    s1 += g
    if l1:
        np.sign(p, out=s2)
        s2 *= l1
        s1 += s2
    return s1


def sgd_update(p: Any, g: Any, lr: float, wd: float = 0.0, l1: float = 0.0,
               scratch: Scratch = None) -> None:
    """p ← p − lr·ĝ."""
    if is_gpu_array(p):
        return _launch("sgd", p, g, (wd, l1, lr))
    s1, s2 = _buffers(p, scratch)
    gg = _grad_np(p, g, wd, l1, s1, s2)
    np.multiply(gg, lr, out=s2)
    p -= s2


def momentum_update(p: Any, g: Any, buf: Any, lr: float, momentum: float,
                    nesterov: bool = False, wd: float = 0.0, l1: float = 0.0,
                    scratch: Scratch = None) -> None:
    """buf ← μ·buf + ĝ; p ← p − lr·buf, or p ← p − lr·(ĝ + μ·buf) with Nesterov (torch.optim.SGD,
    dampening 0: a zero-initialised buffer gives torch's first step buf = ĝ exactly)."""
    if is_gpu_array(p):
        return _launch("sgd_nesterov" if nesterov else "sgd_momentum", p, g,
                       (wd, l1, lr, momentum), buf)
    s1, s2 = _buffers(p, scratch)
    gg = _grad_np(p, g, wd, l1, s1, s2)
    buf *= momentum
    buf += gg
    if nesterov:
        np.multiply(buf, momentum, out=s2)
        s2 += gg
        s2 *= lr
    else:
        np.multiply(buf, lr, out=s2)  # four whole-array passes in all
    p -= s2


def adagrad_update(p: Any, g: Any, acc: Any, lr: float, eps: float, wd: float = 0.0,
                   l1: float = 0.0, scratch: Scratch = None) -> None:
    """acc ← acc + ĝ²; p ← p − lr·ĝ / (√acc + ε)."""
    if is_gpu_array(p):
        return _launch("adagrad", p, g, (wd, l1, lr, eps), acc)
    s1, s2 = _buffers(p, scratch)
    gg = _grad_np(p, g, wd, l1, s1, s2)
    np.multiply(gg, gg, out=s2)
    acc += s2
    _step_np(p, gg, acc, lr, eps, s2)


def rmsprop_update(p: Any, g: Any, sq: Any, lr: float, rho: float, eps: float,
                   wd: float = 0.0, l1: float = 0.0, scratch: Scratch = None) -> None:
    """sq ← ρ·sq + (1 − ρ)·ĝ²; p ← p − lr·ĝ / (√sq + ε) (torch RMSprop, non-centered)."""
    if is_gpu_array(p):
        return _launch("rmsprop", p, g, (wd, l1, lr, rho, 1.0 - rho, eps), sq)
    s1, s2 = _buffers(p, scratch)
    gg = _grad_np(p, g, wd, l1, s1, s2)
    sq *= rho
    np.multiply(gg, gg, out=s2)
    s2 *= 1.0 - rho
    sq += s2
    _step_np(p, gg, sq, lr, eps, s2)


def _step_np(p: np.ndarray, gg: np.ndarray, acc: np.ndarray, lr: float, eps: float,
             s2: np.ndarray) -> None:
    """p ← p − lr·ĝ / (√acc + ε), shared by Adagrad and RMSprop."""
    np.sqrt(acc, out=s2)
    s2 += eps
    np.divide(gg, s2, out=s2)
    s2 *= lr
    p -= s2


def adam_update(p: Any, g: Any, m: Any, v: Any, step_size: float, beta1: float, beta2: float,
                eps: float, bc2_sqrt: float, wd: float = 0.0, l1: float = 0.0,
                scratch: Scratch = None) -> None:
    """m ← m + (1 − β₁)(ĝ − m); v ← β₂·v + (1 − β₂)·ĝ²; p ← p − step·m / (√v / √bc₂ + ε), with
    step = lr / (1 − β₁ᵗ) and bc2_sqrt = √(1 − β₂ᵗ) computed by the caller (as torch.optim.Adam)."""
    if is_gpu_array(p):
        scalars = (wd, l1, step_size, 1.0 - beta1, beta2, 1.0 - beta2, eps, bc2_sqrt)
        return _launch("adam", p, g, scalars, m, v)
    s1, s2 = _buffers(p, scratch)
    gg = _grad_np(p, g, wd, l1, s1, s2)
    np.subtract(gg, m, out=s2)
    s2 *= 1.0 - beta1
    m += s2
    v *= beta2
    np.multiply(gg, gg, out=s2)
    s2 *= 1.0 - beta2
    v += s2
    np.sqrt(v, out=s2)
    s2 /= bc2_sqrt
    s2 += eps
    np.divide(m, s2, out=s2)
    s2 *= step_size
    p -= s2
