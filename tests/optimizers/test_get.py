"""optimizers.get(): by name and instance, as Sequential.compile uses it."""

from __future__ import annotations

import pytest

import gpunet as gn
from tests.helpers import close, host

opts = gn.optimizers


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


def test_get_builds_a_named_optimizer_with_settings():
    momentum = opts.get("momentum", lr=0.3, weight_decay=0.1)
    assert type(momentum) is opts.SGD and momentum.momentum == 0.9 and momentum.lr == 0.3
    assert momentum.weight_decay == 0.1 and opts.get("adam", lr=0.02).lr == 0.02
    with pytest.raises(ValueError, match="settings \\['lr'\\] go with a name"):
        opts.get(opts.Adam(), lr=0.1)
