"""Central-difference gradient checks in float64 for a layer, a loss or a whole model
(after chainer/gradient_check.py).

The checked object is deep-copied and its parameters converted to float64, so the original is
left untouched. Each check compares the analytic gradient with
    (f(θ + ε) − f(θ − ε)) / 2ε
at up to `max_checks` sampled entries of every array, and raises `GradientCheckError` when
|analytic − numeric| > atol + rtol·|numeric| anywhere.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.layers.base import Layer
from gpunet.losses import Loss
from gpunet.model import Sequential


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with the finite-difference one."""


def check_gradients(target: Any, x: Any, y: Any = None, loss: Loss | None = None, *,
                    eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
                    max_checks: int = 64, seed: int = 0) -> dict[str, float]:
    """Check `target`'s backward against central differences; return the worst error per array
    (in units of the tolerance, so every value is <= 1 when this returns).

    - Layer: the objective is Σ forward(x) ⊙ R for a fixed random R; checks dx and every param.
    - Loss: the objective is the loss value at predictions `x` with targets `y`; checks dpred.
    - Sequential: the objective is `loss(model(x), y)`; checks dx and every layer's params.

    Layers and models are checked through a float64 copy built as a `Sequential`, driven by the
    model's own `forward` and `backward`. Dropout draws the same mask on every evaluation from
    a generator of its own (seeded with `seed`): the user's generators do not move.
    """
    with backend.precision(np.float64):
        if isinstance(target, Loss):
            return _check(*_loss_problem(target, x, y), eps, atol, rtol, max_checks, seed)
        if isinstance(target, Layer):
            net = _float64_copy([target])
        elif isinstance(target, Sequential):
            if loss is None or y is None:
                raise ValueError("check_gradients: a model needs `y` and `loss`")
            net = _float64_copy(target.layers)
        else:
            raise TypeError(f"check_gradients: target must be a Layer, Loss or Sequential, "
                            f"got {type(target).__name__}")
        return _check(*_model_problem(net, x, y, loss, seed), eps, atol, rtol, max_checks, seed)


def _float64_copy(layers: list[Layer]) -> Sequential:
    """A Sequential of copies of `layers` in float64 (inside `precision`), on their device,
    whose first layer computes dC/d(input) too."""
    xp = layers[0].xp
    net = Sequential(copy.deepcopy(layers), device="cpu" if backend.is_cpu(xp) else "gpu")
    net.layers[0].input_grad = True
    return net


def _loss_problem(loss: Loss, pred: Any, y: Any):
    xp = backend.xp_of(pred)
    pred = xp.array(pred, dtype=np.float64)

    def objective() -> float:
        return float(loss.forward(pred, y)[0])

    def analytic() -> dict[str, Any]:
        return {"pred": loss.forward(pred, y)[1]}

    return objective, analytic, {"pred": pred}


@contextlib.contextmanager
def _same_draws(xp: Any, seed: int) -> Iterator[None]:
    """The same random draws on every evaluation, the user's generators left where they are."""
    with backend.local_rng(seed):
        if backend.is_cpu(xp):
            yield
            return
        saved = xp.random.get_random_state()
        xp.random.set_random_state(xp.random.RandomState(seed))
        try:
            yield
        finally:
            xp.random.set_random_state(saved)


def _model_problem(net: Sequential, x: Any, y: Any, loss: Loss | None, seed: int):
    x = backend.to_xp(x, net.xp).astype(np.float64)
    names = [f"{i}.{type(layer).__name__}.{k}" if len(net.layers) > 1 else k
             for i, layer in enumerate(net.layers) for k in layer.params]
    probe = None

    def output() -> Any:
        with _same_draws(net.xp, seed):
            return net.forward(x, training=True)

    def objective() -> float:
        nonlocal probe
        out = output()
        if loss is not None:
            return float(loss.forward(out, y)[0])
        if probe is None:
            probe = net.xp.asarray(np.random.default_rng(seed + 1).standard_normal(out.shape))
        return float((out * probe).sum())

    def analytic() -> dict[str, Any]:
        objective()  # draws the probe
        out = output()
        grads = {"x": net.backward(loss.forward(out, y)[1] if loss is not None else probe)}
        grads.update(zip(names, (g.copy() for layer in net.layers for g in layer.grads.values()),
                         strict=True))
        return grads

    arrays = {"x": x, **dict(zip(names, (p for layer in net.layers
                                          for p in layer.params.values()), strict=True))}
    return objective, analytic, arrays


def _check(objective: Callable[[], float], analytic: Callable[[], dict[str, Any]],
           arrays: dict[str, Any], eps: float, atol: float, rtol: float, max_checks: int,
           seed: int) -> dict[str, float]:
    grads = {k: backend.to_numpy(v) for k, v in analytic().items()}
    rng = np.random.default_rng(seed)
    worst: dict[str, float] = {}
    failures = []
    for name, arr in arrays.items():
        flat = arr.reshape(-1)  # a view: perturbing it perturbs the layer's array
        picks = np.arange(flat.size)
        if flat.size > max_checks:
            picks = rng.choice(flat.size, max_checks, replace=False)
        g = grads[name].reshape(-1)
        err = 0.0
        for i in picks:
            old = float(flat[i])
            flat[i] = old + eps
            plus = objective()
            flat[i] = old - eps
            minus = objective()
            flat[i] = old
            numeric = (plus - minus) / (2 * eps)
            diff = abs(float(g[i]) - numeric)
            err = max(err, diff / (atol + rtol * abs(numeric)))
            if diff > atol + rtol * abs(numeric) and len(failures) < 10:
                failures.append(f"{name}[{np.unravel_index(i, arr.shape)}]: analytic "
                                f"{float(g[i]):.6g} vs numeric {numeric:.6g}")
        worst[name] = err
    if failures:
        raise GradientCheckError("gradient check failed:\n  " + "\n  ".join(failures))
    return worst
