"""Losses. `value, grad = loss(pred, target)`: the mean loss over the batch (a float) and
dC/d(pred). `loss.forward` returns the value as a 0-d device array instead, so that a training
loop can accumulate it without a host↔device synchronisation per batch.

Backpropagation starts here. The gradient is ∇ₐC of BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ): the output
activation's backward multiplies it by σ′ (`layers.Sigmoid.backward`). CrossEntropy, on logits,
returns δᴸ itself (softmax and the loss fused). The batch mean's 1/n lives here, in the
gradient: every δ below carries it, so the layers' sums over the batch (BP3, BP4) are already
the mean's gradients and the optimizer applies them as they are (Nielsen divides by the
mini-batch size in his update instead). See docs/backprop.md.
"""

from __future__ import annotations

import abc
import math
from typing import Any

from gpunet import backend


class Loss(abc.ABC):
    name = "loss"

    def __call__(self, pred: Any, target: Any) -> tuple[float, Any]:
        if getattr(target, "ndim", 0) == 1 and target.dtype.kind in "iu" and \
                getattr(pred, "ndim", 0) == 2:  # labels on the GPU too: this call syncs anyway
            _check_labels(self, target, pred, on_device=True)
        value, grad = self.forward(pred, target)
        value = float(value)
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{type(self).__name__}: the loss is {value}; the predictions contain NaN or inf "
                "(diverging training: lower the learning rate or check the input data)")
        return value, grad

    @abc.abstractmethod
    def forward(self, pred: Any, target: Any) -> tuple[Any, Any]:
        """(mean loss as a 0-d array, dC/d(pred)) without a host↔device synchronisation."""

    def _inputs(self, pred: Any, target: Any) -> tuple[Any, Any, Any]:
        xp = backend.xp_of(pred)
        if not hasattr(pred, "ndim") or pred.ndim != 2:
            raise ValueError(f"{type(self).__name__}: pred must have shape (N, outputs), got "
                             f"{getattr(pred, 'shape', type(pred).__name__)}")
        if pred.dtype != backend.floatx():
            pred = pred.astype(backend.floatx())
        target = backend.to_xp(target, xp)
        return xp, pred, target

    def _dense_target(self, xp: Any, pred: Any, target: Any) -> Any:
        """Accept targets shaped like pred, or integer class labels of shape (N,) (one-hot)."""
        if target.ndim == 1 and target.dtype.kind in "iu":
            labels = _check_labels(self, target, pred)
            onehot = xp.zeros(pred.shape, dtype=pred.dtype)
            onehot[xp.arange(pred.shape[0]), labels] = 1
            return onehot
        if tuple(target.shape) != tuple(pred.shape):
            raise ValueError(f"{type(self).__name__}: target must have the shape of pred "
                             f"{tuple(pred.shape)} or be integer labels of shape "
                             f"({pred.shape[0]},), got {tuple(target.shape)}")
        return target.astype(pred.dtype, copy=False)


def _check_labels(loss: Loss, labels: Any, pred: Any, on_device: bool = False) -> Any:
    """Check the labels' shape, and their range: always for host arrays, for device arrays
    only when `on_device` (it costs a synchronisation; CuPy's indexing would wrap silently)."""
    n, k = pred.shape
    if tuple(labels.shape) != (n,):
        raise ValueError(f"{type(loss).__name__}: integer labels must have shape ({n},), "
                         f"got {tuple(labels.shape)}")
    # is_gpu_array, not isinstance(np.ndarray): the CuPy stand-in's device arrays subclass it
    if (not backend.is_gpu_array(labels) or on_device) and labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            raise ValueError(f"{type(loss).__name__}: labels must be in [0, {k}), got values "
                             f"in [{lo}, {hi}]")
    return labels


class MSE(Loss):
    """The quadratic cost C = 1/(2n) Σₓ ‖y(x) − a(x)‖²; dC/da = (a − y)/n."""

    name = "mse"

    def forward(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp, pred, target = self._inputs(pred, target)
        diff = pred - self._dense_target(xp, pred, target)
        n = pred.shape[0]
        return (diff * diff).sum() / (2 * n), diff / pred.dtype.type(n)  # ∇ₐC of BP1, with 1/n


class BinaryCrossEntropy(Loss):
    """C = −1/n Σₓ Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)] on probabilities a (after a Sigmoid).
    a is clipped to [eps, 1 − eps] so that the log stays finite."""

    name = "binary_crossentropy"

    def __init__(self, eps: float = 1e-7) -> None:
        self.eps = eps

    def forward(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp, pred, target = self._inputs(pred, target)
        y = self._dense_target(xp, pred, target)
        a = xp.clip(pred, self.eps, 1 - self.eps)
        n = pred.shape[0]
        value = -(y * xp.log(a) + (1 - y) * xp.log1p(-a)).sum() / n
        # ∇ₐC of BP1 with its 1/n; a Sigmoid's σ′ = a(1 − a) then cancels: δᴸ = (a − y)/n
        return value, (a - y) / (a * (1 - a) * n)


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits z, stable through log-sum-exp:
    C = 1/n Σₓ (log Σⱼ exp zⱼ − Σⱼ yⱼ zⱼ); dC/dz = (softmax(z) − y)/n.
    Targets: integer labels (N,), one-hot or probability rows (N, K)."""

    name = "crossentropy"

    def forward(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp, z, target = self._inputs(pred, target)
        n = z.shape[0]
        shifted = z - z.max(axis=1, keepdims=True)
        expz = xp.exp(shifted)
        sumexp = expz.sum(axis=1, keepdims=True)
        logsum = xp.log(sumexp)
        prob = expz
        prob /= sumexp
        if target.ndim == 1 and target.dtype.kind in "iu":
            labels = _check_labels(self, target, z)
            rows = xp.arange(n)
            value = (logsum[:, 0] - shifted[rows, labels]).sum() / n
            prob[rows, labels] -= 1
        else:
            y = self._dense_target(xp, z, target)
            value = ((logsum[:, 0] * y.sum(axis=1)).sum() - (shifted * y).sum()) / n
            prob -= y
        prob /= z.dtype.type(n)  # the batch mean's 1/n
        return value, prob  # BP1 with the softmax fused in: δᴸ = ∂C/∂z = (softmax(z) − y)/n


LOSSES = {"mse": MSE, "binary_crossentropy": BinaryCrossEntropy, "crossentropy": CrossEntropy}


def get(loss: str | Loss) -> Loss:
    """A Loss from an instance or a name ("mse", "binary_crossentropy", "crossentropy")."""
    if isinstance(loss, Loss):
        return loss
    if loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"loss: expected a gpunet.losses.Loss or one of {sorted(LOSSES)}, "
                     f"got {loss!r}")
