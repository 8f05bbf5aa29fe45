"""The Optimizer base class: learning rate (a float or an epoch schedule), lazily allocated
per-array state kept on the parameters' backend, and host-side state dicts for checkpoints."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.checks import check, is_real
from gpunet.optimizers.schedules import Schedule


class Optimizer(abc.ABC):
    """Updates parameter arrays in place from their gradients; see `step`.

    Subclasses list the names of their per-array state in `slots` and implement `_update`.
    State is keyed by position in the `params` list and created on the first `step`.
    """

    slots: tuple[str, ...] = ()

    def __init__(self, lr: float | Schedule, weight_decay: float, l1: float) -> None:
        name = type(self).__name__
        self.schedule: Schedule | None = lr if callable(lr) else None
        initial = self.schedule(0) if self.schedule is not None else lr
        check(is_real(initial) and initial > 0, name, "lr", "a number > 0 or a schedule",
              initial)
        check(is_real(weight_decay) and weight_decay >= 0, name, "weight_decay", "a number >= 0",
              weight_decay)
        check(is_real(l1) and l1 >= 0, name, "l1", "a number >= 0", l1)
        self._lr = float(initial)
        self.weight_decay = float(weight_decay)
        self.l1 = float(l1)
        self.iterations = 0
        self._state: list[dict[str, Any]] = []
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- learning rate ---------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        """Callbacks (ReduceLROnPlateau) and schedules set it; 0 freezes the parameters."""
        check(is_real(value) and value >= 0, type(self).__name__, "lr", "a number >= 0", value)
        self._lr = float(value)

    def on_epoch_begin(self, epoch: int) -> None:
        """With a schedule, set lr = schedule(epoch); with a float lr, do nothing."""
        if self.schedule is not None:
            self.lr = self.schedule(epoch)

    # -- the update ------------------------------------------------------------------------
    def step(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Update every array in `params` in place from the matching array in `grads`.

        `grads` are only read. Pass the same arrays (same order and shapes) every step.
        """
        self._check(params, grads)
        self.iterations += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self._update(p, g.astype(p.dtype, copy=False), self._slots(i, p),
                         self._buffers(i, p))

    def _check(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Refuse a step before touching anything, so that a failed call changes no state."""
        name = type(self).__name__
        if len(params) != len(grads):
            raise ValueError(f"{name}.step: got {len(params)} parameter arrays but "
                             f"{len(grads)} gradient arrays")
        if self._state and len(self._state) != len(params):
            raise ValueError(f"{name}.step: got {len(params)} parameter arrays, but the state "
                             f"was built for {len(self._state)}")
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if tuple(p.shape) != tuple(g.shape) or p.dtype.kind != "f":
                raise ValueError(f"{name}.step: params[{i}] must be a float array shaped like "
                                 f"grads[{i}] {tuple(g.shape)}, got {p.dtype} {tuple(p.shape)}")
            for k, a in (self._state[i] if self._state else {}).items():
                if tuple(a.shape) != tuple(p.shape):
                    raise ValueError(f"{name}.step: state {k} of params[{i}] has shape "
                                     f"{tuple(a.shape)}, the array has {tuple(p.shape)}")

    @abc.abstractmethod
    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        """Apply the rule to one array (`scratch`: two NumPy buffers, or None on the GPU)."""

    def _slots(self, i: int, p: Any) -> dict[str, Any]:
        xp = backend.xp_of(p)
        if i == len(self._state):
            self._state.append({k: xp.zeros_like(p) for k in self.slots})
        state = self._state[i]
        for k, a in state.items():
            if backend.xp_of(a) is not xp or a.dtype != p.dtype:  # loaded, or moved model
                state[k] = backend.to_xp(a, xp).astype(p.dtype, copy=False)
        return state

    def _buffers(self, i: int, p: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if backend.is_gpu_array(p):
            return None
        buf = self._scratch.get(i)
        if buf is None or buf[0].shape != p.shape or buf[0].dtype != p.dtype:
            buf = self._scratch[i] = (np.empty_like(p), np.empty_like(p))
        return buf

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Host copies: {"lr", "iterations", "state.<i>.<slot>": array} (no pickle needed)."""
        out: dict[str, Any] = {"lr": self._lr, "iterations": self.iterations}
        for i, state in enumerate(self._state):
            for k, a in state.items():
                out[f"state.{i}.{k}"] = np.array(backend.to_numpy(a), copy=True)
        return out

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore `state_dict()` output (values may be 0-d arrays, as read from an .npz)."""
        name = f"{type(self).__name__}.load_state_dict"
        missing = [k for k in ("lr", "iterations") if k not in d]
        if missing:
            raise ValueError(f"{name}: missing {missing}")
        groups: dict[int, dict[str, np.ndarray]] = {}
        for key, value in d.items():
            parts = key.split(".")
            if key in ("lr", "iterations"):
                continue
            if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() \
                    or parts[2] not in self.slots:
                raise ValueError(f"{name}: unexpected key {key!r}; expected lr, iterations and "
                                 f"state.<i>.<slot> with slot in {self.slots}")
            groups.setdefault(int(parts[1]), {})[parts[2]] = np.array(value, copy=True)
        if sorted(groups) != list(range(len(groups))) or \
                any(set(s) != set(self.slots) for s in groups.values()):
            raise ValueError(f"{name}: incomplete state; every array needs {self.slots}")
        self.lr = float(d["lr"])
        self.iterations = int(d["iterations"])
        self._state = [groups[i] for i in range(len(groups))]

    def to(self, xp: ModuleType) -> Optimizer:
        """Move the state to the backend `xp` (NumPy or CuPy); returns self."""
        for state in self._state:
            for k, a in state.items():
                state[k] = backend.to_xp(a, xp)
        self._scratch.clear()
        return self

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.schedule or self._lr, "weight_decay": self.weight_decay,
                "l1": self.l1}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
