"""Optimizer base: state dicts, moving state, argument checks of step(), lr and schedules."""

from __future__ import annotations

import io

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from tests.helpers import close, host
from tests.optimizers.helpers import CASES, _problem, _run_ours

opts = gn.optimizers


@pytest.mark.parametrize("case", ["momentum", "nesterov", "adagrad", "rmsprop", "adam_wd"])
def test_state_dict_round_trip_reproduces_the_next_step(xp, case):
    make = CASES[case][0]
    p0, noise = _problem(n_arrays=2, steps=4)
    first = make()
    params = _run_ours(first, xp, p0, noise[:3])
    buf = io.BytesIO()
    np.savez(buf, **first.state_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        loaded = {k: data[k] for k in data.files}
    second = make()
    second.load_state_dict(loaded)
    assert second.iterations == 3 and second.lr == first.lr
    copies = [p.copy() for p in params]
    grads = [xp.asarray(n) for n in noise[3]]
    first.step(params, grads)
    second.step(copies, grads)
    for a, b in zip(params, copies, strict=True):
        np.testing.assert_array_equal(host(a), host(b))


def test_state_dict_is_host_copies_and_to_moves_state(xp):
    opt = opts.Adam()
    p = np.ones(5, np.float32)
    opt.step([p], [np.full(5, 0.1, np.float32)])
    sd = opt.state_dict()
    assert set(sd) == {"lr", "iterations", "state.0.exp_avg", "state.0.exp_avg_sq"}
    assert all(type(v) in (float, int, np.ndarray) for v in sd.values())
    sd["state.0.exp_avg"][...] = 99  # a copy: the optimizer's state is untouched
    assert float(opt._state[0]["exp_avg"][0]) != 99
    opt.to(xp)
    assert all(backend.xp_of(a) is xp for a in opt._state[0].values())
    reference = opts.Adam()
    q = np.ones(5, np.float32)
    reference.step([q], [np.full(5, 0.1, np.float32)])
    p_xp = xp.asarray(p)
    opt.step([p_xp], [xp.full(5, 0.2, dtype=xp.float32)])
    reference.step([q], [np.full(5, 0.2, np.float32)])
    close(p_xp, q, rtol=1e-6, atol=1e-7)


def test_load_state_dict_rejects_other_optimizers_state():
    adam = opts.Adam()
    adam.step([np.ones(3, np.float32)], [np.ones(3, np.float32)])
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: unexpected key 'state.0.exp_avg'"):
        opts.SGD(momentum=0.9).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match=r"missing \['iterations'\]"):
        opts.Adam().load_state_dict({"lr": 0.1})


def test_step_rejects_mismatched_arrays():
    opt = opts.SGD(momentum=0.5)
    with pytest.raises(ValueError, match="2 parameter arrays but 1 gradient"):
        opt.step([np.ones(2), np.ones(2)], [np.ones(2)])
    with pytest.raises(ValueError, match=r"params\[0\] must be a float array shaped like"):
        opt.step([np.ones(3, np.float32)], [np.ones(4, np.float32)])
    opt.step([np.ones(3, np.float32)], [np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="state was built for 1"):
        opt.step([np.ones(3, np.float32)] * 2, [np.ones(3, np.float32)] * 2)
    with pytest.raises(ValueError, match=r"state momentum_buffer of params\[0\] has shape"):
        opt.step([np.ones(4, np.float32)], [np.ones(4, np.float32)])
    assert opt.iterations == 1  # failed calls took no step


def test_schedule_as_lr_is_applied_on_epoch_begin():
    opt = opts.SGD(lr=opts.StepDecay(0.1, step_size=2), momentum=0.9)
    assert opt.lr == pytest.approx(0.1)
    opt.on_epoch_begin(3)
    assert opt.lr == pytest.approx(0.01)
    fixed = opts.Adam(lr=0.005)
    fixed.lr = 0.002  # ReduceLROnPlateau sets it; on_epoch_begin leaves a float lr alone
    fixed.on_epoch_begin(7)
    assert fixed.lr == 0.002
    assert "StepDecay" in repr(opt)


def test_lr_setter_validates():
    opt = opts.Adam()
    with pytest.raises(ValueError, match=r"Adam: lr must be a number >= 0, got -0.1"):
        opt.lr = -0.1
