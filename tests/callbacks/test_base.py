"""Callback base: resumable state (strict JSON, host arrays), restores, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpunet.callbacks import (
    CosineAnnealing,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from tests.callbacks.helpers import (
    assert_weights,
    json_round_trip,
    logs_of,
    lr_history,
    make_model,
    stamp,
    weights_of,
)


def test_state_is_strict_json_and_arrays_are_host_copies():
    model = make_model()
    es = EarlyStopping(restore_best_weights=True)
    es.set_model(model)
    es.on_train_begin({})
    assert es.get_state() == {"wait": 0, "stopped_epoch": 0, "best": "inf", "best_epoch": 0}
    assert es.get_arrays() == {}
    stamp(model, 0)
    es.on_epoch_end(0, {"val_loss": 0.5})
    arrays = es.get_arrays()
    assert isinstance(arrays["best_weights"], np.ndarray)
    np.testing.assert_array_equal(arrays["best_weights"], weights_of(0))
    fresh = EarlyStopping(restore_best_weights=True)
    fresh.set_model(model)
    fresh.set_state(json_round_trip(es.get_state()), arrays)
    fresh.on_train_begin({})  # just restored: not reset
    assert fresh.best == 0.5
    stamp(model, 3)
    fresh.on_train_end({})
    assert_weights(model, 0)


def test_set_state_after_train_begin_then_a_later_fit_starts_afresh():
    model = make_model()
    cb = ReduceLROnPlateau(patience=1)
    cb.set_model(model)
    cb.on_train_begin({})
    cb.set_state({"best": 0.2, "wait": 0, "cooldown_counter": 0})  # resume after train begin
    cb.on_epoch_end(0, {"val_loss": 0.5})  # worse than the restored best: reduce
    assert model.optimizer.lr == pytest.approx(0.01)
    cb.on_train_end({})
    assert lr_history([cb], logs_of("val_loss", [0.5, 0.4])) == [0.1, 0.1]  # best reset to inf


def test_restore_rejects_weights_of_another_model():
    es = EarlyStopping(restore_best_weights=True)
    es.set_model(make_model())
    es.set_state({"wait": 0, "stopped_epoch": 0, "best": 0.1, "best_epoch": 0},
                 {"best_weights": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="EarlyStopping: saved weights hold 5 values"):
        es.on_train_end({})


@pytest.mark.parametrize("build, match", [
    (lambda: EarlyStopping(mode="up"), r"EarlyStopping: mode must be one of .*got 'up'"),
    (lambda: EarlyStopping(patience=-1), r"EarlyStopping: patience must be an int >= 0, got -1"),
    (lambda: EarlyStopping(patience=1.5), r"EarlyStopping: patience .* got 1.5"),
    (lambda: EarlyStopping(start_from_epoch=-2), r"EarlyStopping: start_from_epoch"),
    (lambda: EarlyStopping(baseline=math.nan), r"EarlyStopping: baseline must be None or"),
    (lambda: EarlyStopping(monitor=""), r"EarlyStopping: monitor must be"),
    (lambda: EarlyStopping(restore_best_weights=1), r"restore_best_weights must be True or"),
    (lambda: ModelCheckpoint(""), r"ModelCheckpoint: filepath must be a non-empty path"),
    (lambda: ModelCheckpoint("a.npz", mode="best"), r"ModelCheckpoint: mode must be one of"),
    (lambda: CSVLogger("a.csv", separator="::"), r"CSVLogger: separator must be a single"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"ReduceLROnPlateau: factor must be .*< 1.0, got 1.0"),
    (lambda: ReduceLROnPlateau(factor=0), r"ReduceLROnPlateau: factor must be .*> 0"),
    (lambda: ReduceLROnPlateau(cooldown=-1), r"ReduceLROnPlateau: cooldown must be an int >= 0"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), r"ReduceLROnPlateau: min_lr must be .*>= 0.0"),
    (lambda: ReduceLROnPlateau(min_delta=-1), r"ReduceLROnPlateau: min_delta must be"),
    (lambda: ReduceLROnPlateau(mode="x"), r"ReduceLROnPlateau: mode must be one of"),
    (lambda: LearningRateScheduler(0.1), r"LearningRateScheduler: schedule must be a callable"),
    (lambda: CosineAnnealing(0), r"CosineAnnealing: total_epochs must be an int >= 1, got 0"),
    (lambda: CosineAnnealing(5, min_lr=0.1, initial_lr=0.01),
     r"CosineAnnealing: initial_lr must be a finite number >= 0.1, got 0.01"),
    (lambda: TerminateOnNaN(restore_best_weights="yes"), r"TerminateOnNaN: restore_best_"),
])
def test_constructor_arguments_are_checked(build, match):
    with pytest.raises(ValueError, match=match):
        build()
