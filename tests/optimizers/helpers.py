"""Shared optimizer cases (ours vs torch.optim) and a runner for a noisy quadratic."""

from __future__ import annotations

import numpy as np

import gpunet as gn
from tests.helpers import host

opts = gn.optimizers
# (ours, torch class name, torch kwargs); all hyperparameters passed explicitly to both sides
CASES = {
    "sgd": (lambda: opts.SGD(lr=0.1), "SGD", {"lr": 0.1}),
    "momentum": (lambda: opts.SGD(lr=0.1, momentum=0.9), "SGD", {"lr": 0.1, "momentum": 0.9}),
    "nesterov": (lambda: opts.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01), "SGD",
                 {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    "sgd_wd": (lambda: opts.SGD(lr=0.1, weight_decay=0.1), "SGD", {"lr": 0.1, "weight_decay": 0.1}),
    "adagrad": (lambda: opts.Adagrad(lr=0.1), "Adagrad", {"lr": 0.1, "eps": 1e-10}),
    "adagrad_wd": (lambda: opts.Adagrad(lr=0.1, weight_decay=0.05), "Adagrad",
                   {"lr": 0.1, "eps": 1e-10, "weight_decay": 0.05}),
    "rmsprop": (lambda: opts.RMSprop(lr=0.01, rho=0.9), "RMSprop",
                {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}),
    "rmsprop_wd": (lambda: opts.RMSprop(lr=0.01, weight_decay=0.1), "RMSprop",
                   {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.1}),
    "adam": (lambda: opts.Adam(lr=0.01), "Adam", {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}),
    "adam_wd": (lambda: opts.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=0.01, weight_decay=0.1),
                "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 0.01, "weight_decay": 0.1}),
}
SHAPES = [(6, 4), (4,), (2, 3, 2)]


def _problem(n_arrays: int = 1, steps: int = 5):
    """Initial params and a fixed noise sequence; the gradient is 0.5·p + noise (a quadratic)."""
    rng = np.random.default_rng(7)
    p0 = [rng.normal(size=s).astype(np.float32) for s in SHAPES[:n_arrays]]
    noise = [[rng.normal(size=s).astype(np.float32) for s in SHAPES[:n_arrays]]
             for _ in range(steps)]
    return p0, noise


def _run_ours(opt, xp, p0, noise):
    params = [xp.asarray(p.copy()) for p in p0]
    for step_noise in noise:
        grads = [0.5 * p + xp.asarray(n) for p, n in zip(params, step_noise, strict=True)]
        before = [host(g).copy() for g in grads]
        opt.step(params, grads)
        for g, b in zip(grads, before, strict=True):
            np.testing.assert_array_equal(host(g), b)  # the caller's gradients are only read
    return params
