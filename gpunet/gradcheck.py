"""Central-difference gradient checks in float64 for a layer, a loss or a whole model
(after chainer/gradient_check.py).

The checked object is deep-copied and its parameters converted to float64, so the original is
left untouched. Each check compares the analytic gradient with
    (f(θ + ε) − f(θ − ε)) / 2ε
at up to `max_checks` sampled entries of every array, and raises `GradientCheckError` when
|analytic − numeric| > atol + rtol·|numeric| anywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.layers.base import Layer
from gpunet.losses import Loss


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with the finite-difference one."""


def check_gradients(target: Any, x: Any, y: Any = None, loss: Loss | None = None, *,
                    eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
                    max_checks: int = 64, seed: int = 0) -> dict[str, float]:
    """Check `target`'s backward against central differences; return the worst error per array.

    - Layer: the objective is Σ forward(x) ⊙ R for a fixed random R; checks dx and every param.
    - Loss: the objective is the loss value at predictions `x` with targets `y`; checks dpred.
    - Sequential: the objective is `loss(model(x), y)`; checks dx and every layer's params.
    """
    from gpunet.model import Sequential  # late import: the model module imports this one

    with backend.precision(np.float64):
        if isinstance(target, Loss):
            return _check(*_loss_problem(target, x, y), eps, atol, rtol, max_checks, seed)
        if isinstance(target, Layer):
            layers = [_to64(copy.deepcopy(target))]
        elif isinstance(target, Sequential):
            if loss is None or y is None:
                raise ValueError("check_gradients: a model needs `y` and `loss`")
            layers = [_to64(copy.deepcopy(layer)) for layer in target.layers]
        else:
            raise TypeError(f"check_gradients: target must be a Layer, Loss or Sequential, "
                            f"got {type(target).__name__}")
        return _check(*_layers_problem(layers, x, y, loss, seed), eps, atol, rtol,
                      max_checks, seed)


def _to64(layer: Layer) -> Layer:
    layer.input_grad = True
    for name in layer.params:
        layer.params[name] = layer.params[name].astype(np.float64)
        layer.grads[name] = layer.xp.zeros_like(layer.params[name])
    return layer


def _loss_problem(loss: Loss, pred: Any, y: Any):
    xp = backend.xp_of(pred)
    pred = xp.array(pred, dtype=np.float64)

    def objective() -> float:
        return float(loss.forward(pred, y)[0])

    def analytic() -> dict[str, Any]:
        return {"pred": loss.forward(pred, y)[1]}

    return objective, analytic, {"pred": pred}


def _layers_problem(layers: list[Layer], x: Any, y: Any, loss: Loss | None, seed: int):
    xp = layers[0].xp
    x = backend.to_xp(x, xp).astype(np.float64)
    probe = None

    def run() -> Any:
        backend.seed(seed)  # the same dropout mask on every evaluation
        out = x
        for layer in layers:
            out = layer.forward(out, training=True)
        return out

    def objective() -> float:
        nonlocal probe
        out = run()
        if loss is not None:
            return float(loss.forward(out, y)[0])
        if probe is None:
            probe = xp.asarray(np.random.default_rng(seed + 1).standard_normal(out.shape))
        return float((out * probe).sum())

    def analytic() -> dict[str, Any]:
        objective()
        out = run()
        grad = loss.forward(out, y)[1] if loss is not None else probe
        for layer in reversed(layers):
            grad = layer.backward(grad)
        grads = {"x": grad}
        for i, layer in enumerate(layers):
            for name, g in layer.grads.items():
                grads[f"{i}.{type(layer).__name__}.{name}" if len(layers) > 1 else name] = g.copy()
        return grads

    arrays = {"x": x}
    for i, layer in enumerate(layers):
        for name, p in layer.params.items():
            arrays[f"{i}.{type(layer).__name__}.{name}" if len(layers) > 1 else name] = p
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
