"""The Layer base class: parameters, gradients, device placement and input checks."""

from __future__ import annotations

import abc
import copy
from types import ModuleType
from typing import Any

import numpy as np

from gpunet import backend


class Layer(abc.ABC):
    """A layer owns an explicit `forward` and `backward`.

    `params` and `grads` are dicts of arrays with the same keys and shapes. `backward` writes
    the parameter gradients into `grads` in place (overwriting, not accumulating) and returns
    the gradient with respect to the input, or None when `input_grad` is False (the model turns
    it off for its first layer, whose input gradient nobody needs).
    """

    # True for layers whose CPU work is mostly single-threaded NumPy (im2col, pooling): with
    # workers="auto", a model holding one shares each batch between CPU threads (see
    # gpunet.training.shards); a model of GEMMs is faster with a multi-threaded BLAS instead.
    parallel_shards = False
    # True for layers that draw from `backend.rng()` in forward (Dropout): threads sharing a
    # batch then each get their own seeded stream, so a seeded run stays reproducible.
    uses_rng = False

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.xp: ModuleType = np
        self.input_grad = True

    # -- the two passes --------------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, x: Any, training: bool = True) -> Any:
        """Compute the output; with training=True keep what backward needs."""

    @abc.abstractmethod
    def backward(self, dy: Any) -> Any:
        """Given dC/dy, fill `grads` and return dC/dx (None when `input_grad` is False)."""

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output sample given one input sample's shape (no batch axis)."""
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the layer (saved as JSON)."""
        return {}

    # -- helpers ---------------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = backend.to_xp(value, self.xp, backend.floatx())
        self.grads[name] = self.xp.zeros_like(self.params[name])

    def to(self, xp: ModuleType) -> Layer:
        """Move parameters and gradients to the backend `xp` (NumPy or CuPy)."""
        self.xp = xp
        for name in list(self.params):
            self.params[name] = backend.to_xp(self.params[name], xp)
            self.grads[name] = xp.zeros_like(self.params[name])
        self._clear_cache()
        return self

    def _clear_cache(self) -> None:
        """Drop arrays kept from the last forward pass."""
        return None

    def __deepcopy__(self, memo: dict) -> Layer:
        new = copy.copy(self)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key != "xp":  # modules cannot be copied; the backend is shared
                setattr(new, key, copy.deepcopy(value, memo))
        return new

    def _prepare(self, x: Any, ndim: int, arg: str = "x") -> Any:
        """Put `x` on this layer's backend as floatx and check its number of axes."""
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        if x.ndim != ndim:
            raise ValueError(f"{self!r}: {arg} must have {ndim} axes {self._layout(ndim)}, "
                             f"got shape {tuple(x.shape)}")
        return self._on_backend(x)

    def _on_backend(self, a: Any) -> Any:
        """An array on this layer's backend (NumPy or CuPy) as floatx; no copy when it is."""
        if backend.xp_of(a) is not self.xp:
            a = backend.to_xp(a, self.xp)
        if a.dtype != backend.floatx():
            a = a.astype(backend.floatx())
        return a

    @staticmethod
    def _layout(ndim: int) -> str:
        return {2: "(N, features)", 4: "(N, C, H, W)"}.get(ndim, "")

    def _saved(self, value: Any, what: str = "input") -> Any:
        """A value kept by the last forward(training=True); RuntimeError when there was none."""
        if value is None:
            raise RuntimeError(f"{self!r}: backward called without a forward(training=True) "
                               f"before it (no saved {what})")
        return value

    def _check_dy(self, dy: Any, expected: tuple[int, ...]) -> Any:
        """dy on this layer's backend as floatx, after checking that it has the shape of the
        last forward's output: a wrong-sized dy is a ValueError naming the layer and both
        shapes, not a NumPy broadcast or matmul error further down (a tuple comparison)."""
        if not hasattr(dy, "shape"):
            dy = np.asarray(dy)
        if tuple(dy.shape) != tuple(expected):
            raise ValueError(f"{self!r}: dy must have the output's shape {tuple(expected)}, "
                             f"got {tuple(dy.shape)}")
        return self._on_backend(dy)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
