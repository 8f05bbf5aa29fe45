"""Optimizers and schedules against torch.optim (the oracle), state dicts, validation, get()."""

from __future__ import annotations

import io

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from tests.helpers import close, host, torch

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


def test_lr_setter_validates():
    opt = opts.Adam()
    with pytest.raises(ValueError, match=r"Adam: lr must be a number >= 0, got -0.1"):
        opt.lr = -0.1


def test_get_by_name_and_instance():
    assert type(opts.get("sgd")) is opts.SGD and opts.get("sgd").momentum == 0.0
    momentum = opts.get("momentum")
    assert type(momentum) is opts.SGD and momentum.momentum == 0.9 and not momentum.nesterov
    for name, cls in [("adagrad", opts.Adagrad), ("RMSprop", opts.RMSprop), ("Adam", opts.Adam)]:
        assert type(opts.get(name)) is cls
    opt = opts.Adam(lr=0.1)
    assert opts.get(opt) is opt
    for bad in ("adamw", None, 3):
        with pytest.raises(ValueError, match=r"optimizer: expected an Optimizer instance or one "
                                             r"of \['adagrad', 'adam', 'momentum', 'rmsprop', "
                                             r"'sgd'\], got"):
            opts.get(bad)


def test_model_compile_uses_get_and_steps_flat_buffers():
    model = gn.Sequential([gn.layers.Dense(3, 2)], device="cpu")
    model.compile(loss="mse", optimizer="adam")
    opt = model.optimizer
    assert type(opt) is opts.Adam
    before = model.flat_params.copy()
    model.flat_grads[...] = 1.0
    opt.step([model.flat_params], [model.flat_grads])
    close(model.flat_params, before - 0.001, rtol=0, atol=1e-6)
    close(model.layers[0].params["b"], host(before)[-2:] - 0.001, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["sgd", "nesterov", "adagrad_wd", "rmsprop_wd", "adam_wd"])
def test_numpy_step_allocates_no_arrays(case):
    import tracemalloc

    opt = CASES[case][0]()
    opt.l1 = 0.01
    p, g = np.ones(250_000, np.float32), np.full(250_000, 0.1, np.float32)
    opt.step([p], [g])  # the first step allocates state and scratch buffers
    tracemalloc.start()
    try:
        opt.step([p], [g])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < p.nbytes // 10
