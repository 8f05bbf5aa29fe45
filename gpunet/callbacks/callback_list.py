"""CallbackList: call a hook on every callback in order, and gather their resumable state."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet.callbacks.base import Callback, Logs


class CallbackList:
    """Forward each hook to `callbacks` in order (so the last one to restore weights wins).

    State: `get_state()` is {"callbacks": [{"class": name, "state": {...}}, ...]} and
    `get_arrays()` prefixes each callback's array names with "<index>.", so both fit in one
    checkpoint; `set_state` checks that the same kinds of callbacks are being resumed.
    """

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"CallbackList: callbacks[{i}] must be a gpunet Callback, "
                                f"got {type(cb).__name__}")

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
        saved = state["callbacks"]
        names = [type(cb).__name__ for cb in self.callbacks]
        if [s["class"] for s in saved] != names:
            raise ValueError(f"CallbackList: the checkpoint holds state for callbacks "
                             f"{[s['class'] for s in saved]} but these are {names}")
        arrays = arrays or {}
        for i, (cb, s) in enumerate(zip(self.callbacks, saved, strict=True)):
            prefix = f"{i}."
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            cb.set_state(s["state"], own)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)
