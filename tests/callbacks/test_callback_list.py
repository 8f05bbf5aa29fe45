"""CallbackList: a resumed run through saved state matches an uninterrupted one; bad state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gpunet as gn
from gpunet.callbacks import (
    CallbackList,
    CosineAnnealing,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from tests.callbacks.helpers import (
    assert_weights,
    fit,
    json_round_trip,
    make_model,
    saved_weights,
    weights_of,
)
from tests.helpers import host


def resumed_run(make: Any, epoch_logs: list[dict[str, float]], split: int,
                set_state_first: bool = False) -> tuple[gn.Sequential, list[int], list[Any]]:
    """Train `split` epochs, checkpoint the callbacks' state (through JSON), then resume."""
    model = make_model()
    first = CallbackList(make())
    ran = fit(model, list(first), epoch_logs[:split])
    state = json_round_trip(first.get_state())
    arrays = {k: np.array(v) for k, v in first.get_arrays().items()}
    second = CallbackList(make())
    if set_state_first:
        second.set_state(state, arrays)
        ran += fit(model, list(second), epoch_logs, initial_epoch=split)
    else:
        second.set_model(model)
        second.set_state(state, arrays)
        ran += fit(model, list(second), epoch_logs, initial_epoch=split)
    return model, ran, list(second)


@pytest.mark.parametrize("set_state_first", [False, True])
def test_state_round_trip_matches_an_uninterrupted_run(tmp_path, set_state_first):
    logs = [{"loss": 1.0, "val_loss": v} for v in [1.0, 0.6, 0.8, 0.7, 0.75, 0.9, 0.3]]

    def make():
        return [EarlyStopping(patience=3, restore_best_weights=True),
                ReduceLROnPlateau(patience=1, factor=0.5, cooldown=1),
                TerminateOnNaN(), CosineAnnealing(20),
                ModelCheckpoint(tmp_path / "best.npz"), CSVLogger(tmp_path / "log.csv")]

    full_model = make_model()
    full = make()
    full_ran = fit(full_model, full, logs)
    full_csv = (tmp_path / "log.csv").read_text()
    model, ran, resumed = resumed_run(make, logs, split=2, set_state_first=set_state_first)
    assert ran == full_ran == [0, 1, 2, 3, 4]
    for a, b in zip(full, resumed, strict=True):
        assert a.get_state() == b.get_state(), type(a).__name__
    assert model.optimizer.lr == full_model.optimizer.lr
    np.testing.assert_array_equal(host(model.flat_params), host(full_model.flat_params))
    assert_weights(model, 1)
    assert (tmp_path / "log.csv").read_text() == full_csv  # appended, header written once
    np.testing.assert_array_equal(saved_weights(tmp_path / "best.npz"), weights_of(1))


def test_each_callback_takes_the_first_saved_state_of_its_class():
    first, second = EarlyStopping(patience=5), EarlyStopping(patience=5)
    first.wait, second.wait = 1, 2
    state = CallbackList([first, CSVLogger("x.csv"), second]).get_state()
    a, b, other = EarlyStopping(patience=5), EarlyStopping(patience=5), ReduceLROnPlateau()
    CallbackList([other, a, b]).set_state(json_round_trip(state), {})
    assert (a.wait, b.wait) == (1, 2)  # in order, the CSVLogger's state dropped
    assert other.get_state() == ReduceLROnPlateau().get_state()  # none saved: starts afresh


def test_callback_list_refuses_bad_state_and_non_callbacks():
    with pytest.raises(ValueError, match=r"CallbackList: state must be \{'callbacks'"):
        CallbackList([EarlyStopping()]).set_state({"wait": 3}, {})
    with pytest.raises(TypeError, match="callbacks\\[0\\] must be a gpunet Callback"):
        CallbackList([object()])
    stopper = EarlyStopping()
    with pytest.raises(ValueError, match=r"fit: callbacks\[1\] EarlyStopping\(.*\) is already"):
        CallbackList([stopper, stopper], owner="fit")
    with pytest.raises(TypeError, match="fit: callbacks must be a list"):
        CallbackList(print, owner="fit")
