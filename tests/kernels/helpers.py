"""Kernel cases: the plain formulas each fused kernel must match, and their inputs."""

from __future__ import annotations

import numpy as np

from gpunet.kernels import activations, optim, pooling

ALPHA = 0.2
# name -> (kernel function, number of inputs, plain reference of the inputs)
ACTIVATIONS = {
    "sigmoid_fwd": (activations.sigmoid_forward, 1, lambda z: 1 / (1 + np.exp(-z))),
    "sigmoid_bwd": (activations.sigmoid_backward, 2, lambda dy, a: dy * a * (1 - a)),
    "relu_bwd": (activations.relu_backward, 2, lambda dy, x: np.where(x > 0, dy, 0.0)),
    "leaky_relu_bwd": (lambda dy, x, out=None: activations.leaky_relu_backward(dy, x, ALPHA, out),
                       2, lambda dy, x: np.where(x > 0, dy, ALPHA * dy)),
    "tanh_bwd": (activations.tanh_backward, 2, lambda dy, a: dy * (1 - a * a)),
}



def _ref_l2pool_scale(dy, y):
    return np.divide(dy, y, out=np.zeros_like(dy), where=y > 0)


# name -> (kernel function, number of inputs, plain reference); the accumulating kernels add
# into their last input, in place, and return it
POOLING = {
    "l2pool_add_square": (pooling.l2pool_add_square, 2, lambda v, total: total + v * v),
    "l2pool_scale": (pooling.l2pool_scale, 2, _ref_l2pool_scale),
    "l2pool_add_grad": (pooling.l2pool_add_grad, 3, lambda g, v, dx: dx + g * v),
}


def _ghat(p, g, wd, l1):
    return g + wd * p + l1 * np.sign(p)


def _ref_sgd(p, g, lr, wd, l1):
    return (p - lr * _ghat(p, g, wd, l1),)


def _ref_momentum(p, g, buf, lr, momentum, nesterov, wd, l1):
    gg = _ghat(p, g, wd, l1)
    buf = momentum * buf + gg
    return p - lr * (gg + momentum * buf if nesterov else buf), buf


def _ref_adagrad(p, g, acc, lr, eps, wd, l1):
    gg = _ghat(p, g, wd, l1)
    acc = acc + gg ** 2
    return p - lr * gg / (np.sqrt(acc) + eps), acc


def _ref_rmsprop(p, g, sq, lr, rho, eps, wd, l1):
    gg = _ghat(p, g, wd, l1)
    sq = rho * sq + (1 - rho) * gg ** 2
    return p - lr * gg / (np.sqrt(sq) + eps), sq


def _ref_adam(p, g, m, v, step_size, beta1, beta2, eps, bc2_sqrt, wd, l1):
    gg = _ghat(p, g, wd, l1)
    m = beta1 * m + (1 - beta1) * gg
    v = beta2 * v + (1 - beta2) * gg ** 2
    return p - step_size * m / (np.sqrt(v) / bc2_sqrt + eps), m, v


# label -> (kernel function, reference, number of state arrays, scalar keyword arguments);
# some cases use a large eps so that where eps enters the formula is visible
OPTIM = {
    "sgd": (optim.sgd_update, _ref_sgd, 0, {"lr": 0.1, "wd": 0.0, "l1": 0.0}),
    "sgd_wd_l1": (optim.sgd_update, _ref_sgd, 0, {"lr": 0.1, "wd": 0.01, "l1": 0.02}),
    "momentum": (optim.momentum_update, _ref_momentum, 1,
                 {"lr": 0.1, "momentum": 0.9, "nesterov": False, "wd": 0.0, "l1": 0.0}),
    "nesterov_wd_l1": (optim.momentum_update, _ref_momentum, 1,
                       {"lr": 0.1, "momentum": 0.8, "nesterov": True, "wd": 0.01, "l1": 0.02}),
    "adagrad_l1": (optim.adagrad_update, _ref_adagrad, 1,
                   {"lr": 0.1, "eps": 0.05, "wd": 0.0, "l1": 0.02}),
    "rmsprop_wd": (optim.rmsprop_update, _ref_rmsprop, 1,
                   {"lr": 0.01, "rho": 0.9, "eps": 0.05, "wd": 0.05, "l1": 0.0}),
    "adam": (optim.adam_update, _ref_adam, 2, {"step_size": 0.01 / (1 - 0.9 ** 3), "beta1": 0.9,
             "beta2": 0.999, "eps": 1e-8, "bc2_sqrt": (1 - 0.999 ** 3) ** 0.5, "wd": 0.0,
             "l1": 0.0}),
    "adam_wd_l1": (optim.adam_update, _ref_adam, 2, {"step_size": 0.02, "beta1": 0.8,
                   "beta2": 0.99, "eps": 0.05, "bc2_sqrt": 0.3, "wd": 0.1, "l1": 0.01}),
}
OPTIM_KERNELS = {f"optim_{n}" for n in optim.SPECS}


def _activation_inputs(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(7, 9)).astype(np.float32) for _ in range(n)]
    xs[-1][0, :3] = 0.0  # the ReLU kink: x = 0 counts as "not > 0"
    return xs


def _optim_inputs(n_state: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    p = rng.normal(size=(5, 8)).astype(np.float32)
    p[0, :4] = 0.0  # sign(0) = 0 for the L1 term
    g = rng.normal(size=(5, 8)).astype(np.float32)
    state = [np.abs(rng.normal(size=(5, 8))).astype(np.float32) * 0.1 for _ in range(n_state)]
    return p, g, state
