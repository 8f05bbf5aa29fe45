"""CallbackList: call a hook on every callback in order, and gather their resumable state."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.callbacks.base import Callback, Logs


class CallbackList:
    """Forward each hook to `callbacks` in order (so the last one to restore weights wins).
    `fit` drives exactly one, holding the user's callbacks, then History and ProgressBar.

    State, the one format checkpoints store: `get_state()` is
    {"callbacks": [{"class": name, "state": {...}}, ...]} and `get_arrays()` prefixes each
    callback's array names with "<index>.". The one matching rule of `set_state`: each callback
    takes the state of the first saved callback of its class not yet taken; saved state nobody
    takes is dropped, and a callback with none starts afresh (so a resumed run may add or leave
    out a callback).
    """

    def __init__(self, callbacks: Any = None, owner: str = "CallbackList") -> None:
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"{owner}: callbacks must be a list of gpunet Callbacks, "
                            f"got {type(callbacks).__name__}")
        self.callbacks = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"{owner}: callbacks[{i}] must be a gpunet Callback "
                                f"(gpunet.callbacks.Callback), got {cb!r} of type "
                                f"{type(cb).__name__}")
            if any(cb is other for other in self.callbacks[:i]):
                raise ValueError(f"{owner}: callbacks[{i}] {cb!r} is already in the list; each "
                                 "hook would run twice for it")

    @property
    def handles_nonfinite(self) -> bool:
        """True when a callback takes charge of a NaN/inf loss (else `fit` raises)."""
        return any(cb.handles_nonfinite for cb in self.callbacks)

    def set_model(self, model: Any) -> None:
        for cb in self.callbacks:
            cb.set_model(model)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def get_state(self) -> dict[str, Any]:
        return {"callbacks": [{"class": type(cb).__name__, "state": cb.get_state()}
                              for cb in self.callbacks]}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, cb in enumerate(self.callbacks)
                for k, v in cb.get_arrays().items()}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        saved = state.get("callbacks") if isinstance(state, dict) else None
        if not isinstance(saved, list) or not all(
                isinstance(s, dict) and {"class", "state"} <= set(s) for s in saved):
            raise ValueError("CallbackList: state must be {'callbacks': [{'class': ..., "
                             "'state': ...}, ...]} as get_state returns, got "
                             f"{str(state)[:200]}")
        arrays = arrays or {}
        untaken = list(range(len(saved)))
        for cb in self.callbacks:
            i = next((i for i in untaken if saved[i]["class"] == type(cb).__name__), None)
            if i is None:
                continue
            untaken.remove(i)
            prefix = f"{i}."
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            cb.set_state(saved[i]["state"], own)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)
