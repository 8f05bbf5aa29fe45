"""Scripted training for the callbacks' tests, run by the real `fit`.

The model is one Dense(3, 2) layer; its optimizer ("training") writes distinct values into
`model.flat_params` at every batch of epoch e (`weights_of(e)`; NaN where the scripted batch loss
is not finite, as a diverged step would), so a test can say exactly which epoch's weights a
callback restored or saved. A `Script` callback, first in the list, replaces the logs fit
computes with the scripted ones before any other callback sees them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

import gpunet as gn
from gpunet.callbacks import Callback
from tests.helpers import host

NAN = float("nan")


class ZeroLoss(gn.losses.Loss):
    """A loss of 0 with a zero gradient: the callbacks see only the scripted logs."""

    def forward(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = gn.backend.xp_of(pred)
        return xp.zeros((), dtype=pred.dtype), xp.zeros_like(pred)


class Stamp(gn.optimizers.Optimizer):
    """Each step writes `weights_of(epoch)` (NaN for a scripted non-finite batch loss)."""

    def __init__(self, lr: float) -> None:
        super().__init__(lr, 0.0, 0.0)
        self.batch_logs: dict[int, list[dict[str, float]]] = {}
        self.epoch = self.batch = 0

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch, self.batch = epoch, 0

    def step(self, params: Any, grads: Any) -> None:
        script = self.batch_logs.get(self.epoch, [])
        loss = script[self.batch].get("loss", 0.0) if self.batch < len(script) else 0.0
        flat = params[0]
        if math.isfinite(loss):
            flat[...] = gn.backend.to_xp(weights_of(self.epoch, flat.size), gn.backend.xp_of(flat))
        else:
            flat[...] = NAN
        self.batch += 1

    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        raise AssertionError("not used: step is replaced")


class Script(Callback):
    """Puts the scripted batch and epoch logs in place of fit's; records the epochs run."""

    def __init__(self, epoch_logs: list[dict[str, float]],
                 batch_logs: dict[int, list[dict[str, float]]]) -> None:
        super().__init__()
        self.epoch_logs, self.batch_logs = epoch_logs, batch_logs
        self.ran: list[int] = []
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        script = self.batch_logs.get(self._epoch, [])
        logs.clear()
        logs.update(script[batch] if batch < len(script) else {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs.clear()
        logs.update(self.epoch_logs[epoch])
        self.ran.append(epoch)


class Probe(Callback):
    """Calls probe(epoch) after every other callback's on_epoch_begin."""

    def __init__(self, probe: Any) -> None:
        super().__init__()
        self.probe = probe

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.probe(epoch)


def make_model(device: str = "cpu", lr: float = 0.1) -> gn.Sequential:
    model = gn.Sequential([gn.layers.Dense(3, 2)], device=device)
    model.compile(loss=ZeroLoss(), optimizer=Stamp(lr))
    return model


def weights_of(epoch: int, n: int = 8) -> np.ndarray:
    """The weights epoch `epoch` leaves behind (epoch -1: none written yet)."""
    return (np.arange(n) + 100.0 * (epoch + 1)).astype(np.float32)


def stamp(model: gn.Sequential, epoch: int) -> None:
    model.flat_params[...] = model.xp.asarray(weights_of(epoch, model.flat_params.size))


def fit(model: gn.Sequential, callbacks: list[Callback], epoch_logs: list[dict[str, float]],
        batch_logs: dict[int, list[dict[str, float]]] | None = None, initial_epoch: int = 0,
        probe: Any = None) -> list[int]:
    """Run `model.fit` for len(epoch_logs) epochs with scripted logs; return the epochs run.

    Batch logs default to two batches without a "loss" (as on the GPU, where the trainer reads
    the loss back from the device only every few batches); every epoch has as many batches as
    the longest script.
    """
    batch_logs = batch_logs or {}
    n = max([2, *(len(b) for b in batch_logs.values())])
    model.optimizer.batch_logs = batch_logs
    script = Script(epoch_logs, batch_logs)
    extra = [Probe(probe)] if probe is not None else []
    model.fit(np.zeros((n, 3), np.float32), np.zeros(n, np.int64), epochs=len(epoch_logs),
              batch_size=1, shuffle=False, verbose=0, initial_epoch=initial_epoch,
              callbacks=[script, *callbacks, *extra], workers=1)
    return script.ran


def logs_of(key: str, values: list[float]) -> list[dict[str, float]]:
    return [{"loss": 1.0, key: v} for v in values]


def assert_weights(model: gn.Sequential, epoch: int) -> None:
    np.testing.assert_array_equal(host(model.flat_params), weights_of(epoch))


def json_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, allow_nan=False))  # strict JSON: no NaN/Infinity


def saved_weights(path: Path) -> np.ndarray:
    return host(gn.load_model(path, device="cpu").flat_params)


def lr_history(callbacks: list[Callback], epoch_logs: list[dict[str, float]],
               lr: float = 0.1) -> list[float]:
    """The optimizer's lr after each epoch end."""
    model = make_model(lr=lr)
    out = []

    class Probe(Callback):
        def on_epoch_end(self, epoch, logs=None):
            out.append(self.model.optimizer.lr)

    fit(model, [*callbacks, Probe()], epoch_logs)
    return out
