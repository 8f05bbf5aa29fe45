"""Learning-rate schedules (StepDecay, CosineDecay) against torch.optim.lr_scheduler."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from tests.helpers import torch

opts = gn.optimizers


def _torch_lrs(make_scheduler, initial_lr: float, epochs: int) -> list[float]:
    t = torch()
    opt = t.optim.SGD([t.zeros(1, requires_grad=True)], lr=initial_lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_decay_matches_torch_step_lr():
    ours = opts.StepDecay(0.1, step_size=3, gamma=0.5)
    ref = _torch_lrs(lambda o: torch().optim.lr_scheduler.StepLR(o, 3, gamma=0.5), 0.1, 12)
    np.testing.assert_allclose([ours(e) for e in range(12)], ref, rtol=1e-12)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_decay_matches_torch_cosine_annealing(min_lr):
    ours = opts.CosineDecay(0.1, total_epochs=10, min_lr=min_lr)
    ref = _torch_lrs(lambda o: torch().optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=10, eta_min=min_lr), 0.1, 11)
    np.testing.assert_allclose([ours(e) for e in range(11)], ref, rtol=1e-9, atol=1e-15)
    assert ours(25) == min_lr  # stays at the floor after total_epochs
