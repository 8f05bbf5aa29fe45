"""MaxPool2D, AvgPool2D and L2Pool2D: finite differences, PyTorch CPU as the oracle (ties and
zero windows included), saving, sharding and the GPU path on the CuPy stand-in."""

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
POOLS = [(gn.layers.MaxPool2D, "max_pool2d"), (gn.layers.AvgPool2D, "avg_pool2d"),
         (gn.layers.L2Pool2D, "LPPool2d")]


def _on(layer, xp):
    return layer.to(xp)


def _distinct(shape, seed=0):
    """Values 0.01 apart in random order: every window max is unique and differentiable."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.01 - n * 0.005


def _torch_pool(name, x, dy, pool, stride):
    t = torch()
    tx = t.from_numpy(x).requires_grad_()
    stride = pool if stride is None else stride
    if name == "LPPool2d":
        ty = t.nn.LPPool2d(2, pool, stride)(tx)
    else:
        ty = getattr(t.nn.functional, name)(tx, pool, stride)
    ty.backward(t.from_numpy(dy.astype(x.dtype)))
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


def _windows_loop(x, pool, stride):
    """sqrt(Σ x²) over each window, one window at a time (the definition, written plainly)."""
    n, c, h, w = x.shape
    oh, ow = (h - pool[0]) // stride[0] + 1, (w - pool[1]) // stride[1] + 1
    y = np.empty((n, c, oh, ow))
    for r in range(oh):
        for q in range(ow):
            r0, q0 = r * stride[0], q * stride[1]
            win = x[:, :, r0:r0 + pool[0], q0:q0 + pool[1]]
            y[:, :, r, q] = np.sqrt((win.astype(np.float64) ** 2).sum(axis=(2, 3)))
    return y


@pytest.mark.parametrize("pool,stride", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((3, 2), (2, 1))])
def test_l2_pool_is_the_window_norm_as_torch_computes_it(pool, stride):
    """float64: the definition, gpunet and torch.nn.LPPool2d(2) (avg_pool(x²)·kh·kw)^(1/2)
    agree to rounding; the gradient is x / y."""
    x = np.random.default_rng(6).normal(size=(2, 3, 7, 8))
    with gn.backend.precision(np.float64):
        layer = gn.layers.L2Pool2D(pool, stride)
        y = layer.forward(x)
        dy = np.random.default_rng(7).normal(size=y.shape)
        dx = layer.backward(dy)
    assert y.dtype == np.float64
    ty, tdx = _torch_pool("LPPool2d", x, dy, pool, stride)
    close(y, _windows_loop(x, pool, stride), rtol=1e-12, atol=1e-12)
    close(y, ty, rtol=1e-12, atol=1e-12)
    close(dx, tdx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 1), ((2, 3), (1, 2))])
def test_l2_pool_zero_windows_pass_no_gradient_and_no_nan(xp, pool, stride):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 2, 8, 9)).astype(np.float32)
    x[0, 0] = 0.0  # every window of this map is all zeros
    x[1, 1, :4, :4] = 0.0  # some windows all zeros, some partly
    x[1, 0, ::2, ::2] = 0.0  # zeros inside windows that are not all zero
    layer = _on(gn.layers.L2Pool2D(pool, stride), xp)
    y = host(layer.forward(xp.asarray(x)))
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx = host(layer.backward(xp.asarray(dy)))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert (y[0, 0] == 0).all() and (dx[0, 0] == 0).all()
    ty, tdx = _torch_pool("LPPool2d", x, dy, pool, stride)
    close(y, ty)
    close(dx, tdx)  # torch 2.13 also passes 0 through a window of zeros
    # the zero windows' inputs get exactly the other windows' share: g·x summed over windows
    g = np.divide(dy, y, out=np.zeros_like(dy), where=y > 0)
    ref = np.zeros_like(x)
    p = gn.layers.L2Pool2D(pool, stride)
    for r in range(y.shape[2]):
        for q in range(y.shape[3]):
            rows = slice(r * p.stride[0], r * p.stride[0] + p.pool[0])
            cols = slice(q * p.stride[1], q * p.stride[1] + p.pool[1])
            ref[:, :, rows, cols] += g[:, :, r, q, None, None] * x[:, :, rows, cols]
    close(dx, ref)


@pytest.mark.parametrize("pool,stride", [(2, None), (3, 2), (2, 1)])
def test_l2_pool_gpu_path_runs_its_cuda_kernels_and_matches_numpy(fake_gpu, pool, stride):
    from tests.kernels.interpreted import InterpretedKernel

    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 2, 7, 6)).astype(np.float32)
    x[0, 1] = 0.0
    cpu = gn.layers.L2Pool2D(pool, stride)
    gpu = gn.layers.L2Pool2D(pool, stride).to(fake_gpu)
    built = len(InterpretedKernel.built)
    y = cpu.forward(x)
    gy = gpu.forward(fake_gpu.asarray(x))
    dy = rng.normal(size=y.shape).astype(np.float32)
    gdx = gpu.backward(fake_gpu.asarray(dy))
    assert isinstance(gy, fake_gpu.ndarray) and isinstance(gdx, fake_gpu.ndarray)
    assert sorted(InterpretedKernel.built[built:]) == ["l2pool_add_grad", "l2pool_add_square",
                                                       "l2pool_scale"]
    close(gy, y)
    close(gdx, cpu.backward(dy))


def _l2_cnn(device="cpu"):
    L = gn.layers
    model = gn.Sequential([L.Conv2D(1, 3, 3), L.L2Pool2D(2), L.Tanh(), L.Conv2D(3, 4, 3, padding=1),
                           L.L2Pool2D(3, 1), L.Flatten(), L.Dense(4 * 2 * 2, 3)],
                          device=device, input_shape=(1, 10, 10))
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.05), metrics=["accuracy"])
    return model


def test_l2_pool_in_a_model_gradcheck_save_and_load(tmp_path):
    assert "L2Pool2D" in gn.layers.registry() and gn.layers.L2Pool2D.parallel_shards
    model = _l2_cnn()
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, 1, 10, 10))
    y = np.array([0, 2, 1, 2])
    report = check_gradients(model, x, y, loss=gn.losses.CrossEntropy())
    assert {"0.Conv2D.W", "3.Conv2D.W", "6.Dense.W"} <= set(report)
    model.save(tmp_path / "l2.npz")
    loaded = gn.load_model(tmp_path / "l2.npz", device="cpu")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        [type(layer).__name__ for layer in model.layers]
    assert loaded.layers[4].get_config() == {"pool_size": 3, "stride": 1}
    close(loaded.forward(x, training=False), model.forward(x, training=False))


def test_l2_pool_model_trains_the_same_when_threads_share_each_batch():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(64, 1, 10, 10)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    weights = []
    for workers in (1, 2):
        gn.seed(3)
        model = _l2_cnn()
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=False, workers=workers)
        weights.append(host(model.flat_params))
    assert not np.allclose(weights[0], host(_l2_cnn().flat_params))  # it trained
    close(weights[1], weights[0], rtol=1e-4, atol=1e-5)
