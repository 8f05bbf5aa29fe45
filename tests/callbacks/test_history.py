"""History: kept by fit as a callback, resumable with its values exact (NaN included)."""

from __future__ import annotations

import math

import numpy as np

from gpunet.callbacks import History
from tests.callbacks.helpers import json_round_trip


def test_history_state_round_trip_is_exact():
    hist = History()
    hist.on_train_begin({})
    for epoch, loss in enumerate([0.1 + 0.2, math.nan, 1e-300]):
        hist.on_epoch_end(epoch, {"loss": loss, "seconds": np.float32(1.5)})
    state = json_round_trip(hist.get_state())
    arrays = {k: np.array(v) for k, v in hist.get_arrays().items()}
    back = History()
    back.set_state(state, arrays)
    back.on_train_begin({})  # a resumed History keeps what it had
    assert back.epoch == [0, 1, 2] and list(back.history) == ["loss", "seconds"]
    assert back.history["loss"][0] == 0.1 + 0.2 and math.isnan(back.history["loss"][1])
    assert back.history["seconds"] == [1.5, 1.5, 1.5]
    fresh = History()
    fresh.set_state(state, arrays)
    fresh.on_train_end({})
    fresh.on_train_begin({})  # after a finished fit, a new fit starts afresh
    assert fresh.epoch == [] and fresh.history == {}
