"""SGD, Adagrad, RMSprop and Adam against torch.optim (the oracle); no allocations per step."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import backend
from tests.helpers import close, peak_bytes, torch
from tests.optimizers.helpers import CASES, _problem, _run_ours


def _run_torch(cls_name, kwargs, p0, noise, l1=0.0):
    t = torch()
    params = [t.tensor(p.copy(), requires_grad=True) for p in p0]
    opt = getattr(t.optim, cls_name)(params, **kwargs)
    for step_noise in noise:
        for p, n in zip(params, step_noise, strict=True):
            with t.no_grad():
                p.grad = 0.5 * p + t.from_numpy(n) + l1 * t.sign(p)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(xp, case):
    make, cls_name, kwargs = CASES[case]
    p0, noise = _problem()
    opt = make()
    ours = _run_ours(opt, xp, p0, noise)
    assert opt.iterations == len(noise)
    close(ours[0], _run_torch(cls_name, kwargs, p0, noise)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_l1_matches_torch_with_l1_sign_added_to_grads(xp, case):
    make, cls_name, kwargs = CASES[case]
    p0, noise = _problem()
    opt = make()
    opt.l1 = 0.05
    ours = _run_ours(opt, xp, p0, noise)
    close(ours[0], _run_torch(cls_name, kwargs, p0, noise, l1=0.05)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["momentum", "adam", "rmsprop"])
def test_many_arrays(xp, case):
    make, cls_name, kwargs = CASES[case]
    p0, noise = _problem(n_arrays=3)
    opt = make()
    ours = _run_ours(opt, xp, p0, noise)
    for a, b in zip(ours, _run_torch(cls_name, kwargs, p0, noise), strict=True):
        close(a, b, rtol=1e-5, atol=1e-6)
    state = opt._state[0]
    assert all(backend.xp_of(a) is xp for a in state.values())  # state lives with the params


@pytest.mark.parametrize("case", ["sgd", "nesterov", "adagrad_wd", "rmsprop_wd", "adam_wd"])
def test_numpy_step_allocates_no_arrays(case):
    opt = CASES[case][0]()
    opt.l1 = 0.01
    p, g = np.ones(250_000, np.float32), np.full(250_000, 0.1, np.float32)
    opt.step([p], [g])  # the first step allocates state and scratch buffers
    peak = peak_bytes(lambda: opt.step([p], [g]))
    assert peak < p.nbytes // 10
