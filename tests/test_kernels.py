"""Fused kernels: NumPy twins vs plain formulas; the CUDA sources run through a NumPy interpreter
of the kernel language (so their arithmetic is checked without a GPU); CuPy vs twin on a GPU."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from gpunet import backend
from gpunet.kernels import _registry, activations, optim
from tests.helpers import close, host

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


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_twin_matches_formula(name):
    fn, n, ref = ACTIVATIONS[name]
    xs = _activation_inputs(n)
    close(fn(*xs), ref(*(x.astype(np.float64) for x in xs)), rtol=1e-6, atol=1e-7)
    out = np.empty_like(xs[0])
    assert fn(*xs, out=out) is out  # writes into a caller's buffer
    close(out, ref(*(x.astype(np.float64) for x in xs)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("label", sorted(OPTIM))
@pytest.mark.parametrize("with_scratch", [True, False])
def test_optim_twin_matches_formula(label, with_scratch):
    fn, ref, n_state, kw = OPTIM[label]
    p, g, state = _optim_inputs(n_state)
    g_before = g.copy()
    expected = [p.astype(np.float64), *(s.astype(np.float64) for s in state)]
    for _ in range(3):
        expected = ref(expected[0], g.astype(np.float64), *expected[1:], **kw)
        scratch = (np.empty_like(p), np.empty_like(p)) if with_scratch else None
        fn(p, g, *state, **kw, scratch=scratch)
    for actual, want in zip([p, *state], expected, strict=True):
        close(actual, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g, g_before)


# -- the CUDA sources, run by a NumPy interpreter of the ElementwiseKernel operation language ---
_DECL = re.compile(r"^T\s+(\w+)\s*=")
_TERNARY = re.compile(r"^(\w+)\s*=\s*(.+?)\s*\?\s*(.+?)\s*:\s*(.+)$")


class InterpretedKernel:
    """Stands in for cupy.ElementwiseKernel: turns the C operation into Python over NumPy
    arrays (declarations, compound assignments, `c ? a : b`, T(x) casts, sqrt, exp)."""

    built: list[str] = []

    def __init__(self, in_params: str, out_params: str, operation: str, name: str) -> None:
        self.ins = [a.split()[-1] for a in in_params.split(",")]
        self.outs = [a.split()[-1] for a in out_params.split(",")]
        lines = [s.strip() for s in operation.replace("\n", ";").split(";") if s.strip()]
        lines = [_DECL.sub(r"\1 =", s) for s in lines]
        lines = [_TERNARY.sub(r"\1 = np.where(\2, \3, \4)", s) for s in lines]
        self.code = compile("\n".join(lines), name, "exec")
        InterpretedKernel.built.append(name.removeprefix("gpunet_"))

    def __call__(self, *args):
        # As CuPy: all inputs, then either no outputs or all of them, as arrays (never None).
        if len(args) not in (len(self.ins), len(self.ins) + len(self.outs)):
            raise TypeError(f"Wrong number of arguments for {self.code.co_filename!r}")
        if any(a is None for a in args):
            raise TypeError("Unsupported type <class 'NoneType'>")
        ins, outs = list(args[:len(self.ins)]), list(args[len(self.ins):])
        dtype = ins[0].dtype
        outs = outs or [np.empty_like(ins[0]) for _ in self.outs]
        ns = {"np": np, "sqrt": np.sqrt, "exp": np.exp,
              "T": lambda x: np.asarray(x).astype(dtype)}
        ns.update(zip(self.ins + self.outs, ins + outs, strict=True))
        exec(self.code, ns)
        for name, out in zip(self.outs, outs, strict=True):
            out[...] = ns[name]
        return outs[0] if len(outs) == 1 else tuple(outs)


@pytest.fixture
def interpreted(monkeypatch):
    """Route the kernels' GPU branch to InterpretedKernel, with a fresh kernel cache."""
    fake = SimpleNamespace(ElementwiseKernel=InterpretedKernel)
    monkeypatch.setattr(_registry, "_import_cupy", lambda: fake)
    monkeypatch.setattr(_registry, "_cache", {})
    monkeypatch.setattr(InterpretedKernel, "built", [])
    for module in (activations, optim):
        monkeypatch.setattr(module, "is_gpu_array", lambda a: True)
    return InterpretedKernel


def _run_all(to_device, kernels_for=None):
    """Run every activation and optimizer kernel on device copies; return the host results."""
    results = {}
    for name, (fn, n, _) in ACTIVATIONS.items():
        results[name] = [host(fn(*(to_device(x) for x in _activation_inputs(n))))]
    for label, (fn, _, n_state, kw) in OPTIM.items():
        p, g, state = _optim_inputs(n_state)
        p, g, state = to_device(p), to_device(g), [to_device(s) for s in state]
        for _ in range(3):
            fn(p, g, *state, **kw)
        results[label] = [host(a) for a in (p, *state)]
    return results


def test_cuda_sources_match_the_twins(interpreted):
    kernel_results = _run_all(np.array)
    assert set(interpreted.built) == set(ACTIVATIONS) | OPTIM_KERNELS
    with pytest.MonkeyPatch.context() as mp:
        for module in (activations, optim):
            mp.setattr(module, "is_gpu_array", lambda a: False)
        twin_results = _run_all(np.array)
    for label, arrays in twin_results.items():
        for actual, want in zip(kernel_results[label], arrays, strict=True):
            close(actual, want, rtol=1e-6, atol=1e-7)


def test_each_kernel_is_built_once(interpreted):
    _run_all(np.array)
    _run_all(np.array)
    assert sorted(interpreted.built) == sorted(set(ACTIVATIONS) | OPTIM_KERNELS)
    assert _registry.compiled_kernels() == sorted(interpreted.built)


# -- on a real GPU -------------------------------------------------------------------------------
@pytest.fixture(params=[pytest.param("cupy", marks=pytest.mark.gpu)])
def cp(request):
    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    return backend._import_cupy()


def test_gpu_kernels_match_the_twins(cp):
    gpu = _run_all(cp.asarray)
    cpu = _run_all(np.array)
    for label, arrays in cpu.items():
        for actual, want in zip(gpu[label], arrays, strict=True):
            close(actual, want, rtol=1e-5, atol=1e-6)


def test_gpu_kernels_are_compiled_once_per_process(cp, monkeypatch):
    _run_all(cp.asarray)
    cached = dict(_registry._cache)
    assert set(ACTIVATIONS) | OPTIM_KERNELS <= set(_registry.compiled_kernels())
    built: list[tuple] = []
    real = cp.ElementwiseKernel
    monkeypatch.setattr(cp, "ElementwiseKernel", lambda *a: built.append(a) or real(*a))
    _run_all(cp.asarray)
    assert built == []
    assert all(_registry._cache[k] is v for k, v in cached.items())
