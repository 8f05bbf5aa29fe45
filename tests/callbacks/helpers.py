"""A tiny stand-in for the trainer that drives the callbacks through scripted losses.

Each epoch's "training" writes distinct values into `model.flat_params` (see `stamp`), so a test
can say exactly which epoch's weights a callback restored or saved.
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


class FakeOptimizer:
    """All the callbacks need of an optimizer: a settable float `lr`."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr


def make_model(device: str = "cpu", lr: float = 0.1) -> gn.Sequential:
    model = gn.Sequential([gn.layers.Dense(3, 2)], device=device)
    model.optimizer = FakeOptimizer(lr)
    return model


def weights_of(epoch: int, n: int = 8) -> np.ndarray:
    """The weights epoch `epoch` leaves behind (epoch -1: none written yet)."""
    return (np.arange(n) + 100.0 * (epoch + 1)).astype(np.float32)


def stamp(model: gn.Sequential, epoch: int) -> None:
    model.flat_params[...] = model.xp.asarray(weights_of(epoch, model.flat_params.size))


def fit(model: gn.Sequential, callbacks: list[Callback], epoch_logs: list[dict[str, float]],
        batch_logs: dict[int, list[dict[str, float]]] | None = None, initial_epoch: int = 0,
        probe: Any = None) -> list[int]:
    """Call the hooks as the trainer will; return the epochs that ran.

    Every batch of epoch e writes `weights_of(e)`; a batch whose scripted loss is not finite
    writes NaN weights, as a diverged step would. Batch logs default to two batches without a
    "loss" (the trainer reads the loss back from the device only every few batches).
    """
    model.stop_training = False
    for cb in callbacks:
        cb.set_model(model)
    for cb in callbacks:
        cb.on_train_begin({})
    ran = []
    for epoch in range(initial_epoch, len(epoch_logs)):
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        if probe is not None:
            probe(epoch)
        for batch, logs in enumerate((batch_logs or {}).get(epoch, [{}, {}])):
            stamp(model, epoch)
            if not math.isfinite(logs.get("loss", 0.0)):
                model.flat_params[...] = NAN
            for cb in callbacks:
                cb.on_batch_end(batch, dict(logs))
            if model.stop_training:
                break
        for cb in callbacks:
            cb.on_epoch_end(epoch, dict(epoch_logs[epoch]))
        ran.append(epoch)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})
    return ran


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
