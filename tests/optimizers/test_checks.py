"""Validation of optimizer and schedule arguments: bad values raise clear errors."""

from __future__ import annotations

import pytest

import gpunet as gn

opts = gn.optimizers


@pytest.mark.parametrize("make,match", [
    (lambda: opts.SGD(lr=0), r"SGD: lr must be a number > 0 or a schedule, got 0"),
    (lambda: opts.SGD(lr="fast"), r"SGD: lr must be .* got 'fast'"),
    (lambda: opts.SGD(momentum=1.0), r"SGD: momentum must be in \[0, 1\), got 1.0"),
    (lambda: opts.SGD(nesterov=True), r"SGD: nesterov must be False when momentum is 0"),
    (lambda: opts.SGD(weight_decay=-1), r"SGD: weight_decay must be a number >= 0, got -1"),
    (lambda: opts.Adagrad(eps=0), r"Adagrad: eps must be a number > 0, got 0"),
    (lambda: opts.Adagrad(l1=-0.1), r"Adagrad: l1 must be a number >= 0, got -0.1"),
    (lambda: opts.RMSprop(rho=1), r"RMSprop: rho must be in \[0, 1\), got 1"),
    (lambda: opts.Adam(beta1=-0.1), r"Adam: beta1 must be in \[0, 1\), got -0.1"),
    (lambda: opts.Adam(beta2=1.0), r"Adam: beta2 must be in \[0, 1\), got 1.0"),
    (lambda: opts.Adam(eps=float("nan")), r"Adam: eps must be a number > 0, got nan"),
    (lambda: opts.StepDecay(0.1, step_size=0), r"StepDecay: step_size must be an int >= 1, got 0"),
    (lambda: opts.CosineDecay(0.1, 10, min_lr=0.2), r"CosineDecay: min_lr must be a number in"),
    (lambda: opts.CosineDecay(0.1, 10)(-1), r"CosineDecay: epoch must be an int >= 0, got -1"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
