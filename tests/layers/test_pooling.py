"""MaxPool2D and AvgPool2D: finite differences, PyTorch CPU as the oracle (ties included)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet as gn
from gpunet.gradcheck import check_gradients
from tests.helpers import close, host, torch

# (pool_size, stride, (H, W)): disjoint, overlapping (stride < pool), gaps and floored edges
CASES = [
    (2, None, (6, 8)),
    (2, None, (7, 5)),
    (3, 2, (7, 8)),
    (2, 1, (5, 4)),
    ((3, 2), (1, 2), (6, 7)),
    (2, 3, (8, 9)),
]
POOLS = [(gn.layers.MaxPool2D, "max_pool2d"), (gn.layers.AvgPool2D, "avg_pool2d")]


def _on(layer, xp):
    return layer.to(xp)


def _distinct(shape, seed=0):
    """Values 0.01 apart in random order: every window max is unique and differentiable."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.01 - n * 0.005


def _torch_pool(name, x, dy, pool, stride):
    t = torch()
    tx = t.from_numpy(x).requires_grad_()
    ty = getattr(t.nn.functional, name)(tx, pool, pool if stride is None else stride)
    ty.backward(t.from_numpy(dy.astype(np.float32)))
    return ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("cls,_", POOLS)
@pytest.mark.parametrize("pool,stride,hw", CASES)
def test_pool_gradcheck(xp, cls, _, pool, stride, hw):
    report = check_gradients(_on(cls(pool, stride), xp), xp.asarray(_distinct((2, 3, *hw))))
    assert set(report) == {"x"} and report["x"] <= 1.0


@pytest.mark.parametrize("cls,name", POOLS)
@pytest.mark.parametrize("pool,stride,hw", CASES)
def test_pool_matches_torch(xp, cls, name, pool, stride, hw):
    x = _distinct((3, 2, *hw), seed=1).astype(np.float32)
    layer = _on(cls(pool, stride), xp)
    y = layer.forward(xp.asarray(x))
    dy = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    ty, tdx = _torch_pool(name, x, dy, pool, stride)
    assert y.shape == ty.shape and y.dtype == np.float32
    close(y, ty)
    close(layer.backward(xp.asarray(dy)), tdx)
    assert layer.output_shape(x.shape[1:]) == ty.shape[1:]


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 3), (2, 1), (3, 2)])
def test_max_pool_ties_give_one_winner_per_window(xp, pool, stride):
    x = np.zeros((2, 3, 7, 7), np.float32)  # every window is an all-equal tie
    layer = _on(gn.layers.MaxPool2D(pool, stride), xp)
    y = layer.forward(xp.asarray(x))
    dy = np.random.default_rng(3).uniform(1, 2, size=y.shape).astype(np.float32)
    dx = host(layer.backward(xp.asarray(dy)))
    close(dx.sum(axis=(2, 3)), dy.sum(axis=(2, 3)))  # each window's gradient counted once
    if stride in (None, pool):
        assert (dx != 0).sum() == dy.size  # disjoint windows: exactly one input per window
    close(dx, _torch_pool("max_pool2d", x, dy, pool, stride)[1])  # the same winner as torch


def test_max_pool_ties_like_relu_output(xp):
    """Many exact ties, as after a ReLU on images: the gradient goes where torch sends it."""
    rng = np.random.default_rng(4)
    x = np.maximum(np.round(rng.normal(size=(4, 5, 12, 12)), 1), 0).astype(np.float32)
    for pool, stride in ((2, None), (3, 2)):
        layer = _on(gn.layers.MaxPool2D(pool, stride), xp)
        y = layer.forward(xp.asarray(x))
        dy = rng.normal(size=y.shape).astype(np.float32)
        ty, tdx = _torch_pool("max_pool2d", x, dy, pool, stride)
        close(y, ty)
        close(layer.backward(xp.asarray(dy)), tdx)


@pytest.mark.parametrize("cls,name", POOLS)
def test_pool_after_conv_view_and_input_grad_false(xp, cls, name):
    conv = _on(gn.layers.Conv2D(2, 3, 3), xp)
    h = conv.forward(xp.asarray(np.random.default_rng(5).normal(size=(2, 2, 8, 8))))
    layer = _on(cls(2), xp)
    y = layer.forward(h)  # an NCHW view of the conv's memory, not C-contiguous
    close(y, _torch_pool(name, np.ascontiguousarray(host(h)), np.ones(y.shape), 2, None)[0])
    layer.input_grad = False
    assert layer.backward(xp.ones(y.shape, dtype=xp.float32)) is None


@pytest.mark.parametrize("cls,_", POOLS)
def test_pool_errors_config_and_cache(xp, cls, _):
    name = cls.__name__
    layer = _on(cls(3, 2), xp)
    assert json.loads(json.dumps(layer.get_config())) == {"pool_size": 3, "stride": 2}
    assert cls(2).get_config() == {"pool_size": 2, "stride": 2}
    assert cls((2, 3), (1, 2)).get_config() == {"pool_size": [2, 3], "stride": [1, 2]}
    assert layer.output_shape((4, 7, 8)) == (4, 3, 3)
    with pytest.raises(ValueError, match=rf"{name}\(pool_size=3, stride=2\): pool_size \(3, 3\) "
                                         r"is larger than the input of shape \(1, 2, 2, 5\)"):
        layer.forward(xp.zeros((1, 2, 2, 5), dtype=xp.float32))
    with pytest.raises(ValueError, match=rf"{name}\(.*4 axes.*got shape \(2, 5\)"):
        layer.forward(xp.zeros((2, 5), dtype=xp.float32))
    with pytest.raises(ValueError, match=rf"{name}\(.*pool_size \(3, 3\) is larger.*\(1, 9, 2\)"):
        layer.output_shape((1, 9, 2))
    with pytest.raises(ValueError, match=rf"{name}: pool_size"):
        cls(0)
    with pytest.raises(ValueError, match=rf"{name}: stride"):
        cls(2, (1, 2, 3))
    y = layer.forward(xp.zeros((1, 2, 5, 5), dtype=xp.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 2, 2, 2\)"):
        layer.backward(xp.zeros((1, 2, 3, 3), dtype=xp.float32))
    assert layer.backward(xp.ones(y.shape, dtype=xp.float32)).shape == (1, 2, 5, 5)
    layer.forward(xp.zeros((1, 2, 5, 5), dtype=xp.float32), training=False)
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        layer.backward(y)
