"""EarlyStopping, its expected behaviour traced by hand from keras/src/callbacks/*.py."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.callbacks import EarlyStopping
from tests.callbacks.helpers import NAN, assert_weights, fit, logs_of, make_model, stamp, weights_of
from tests.helpers import host


def test_early_stopping_keras_doc_example_constant_loss_runs_four_epochs():
    # Keras docstring: patience=3 on a loss that never improves -> "Only 4 epochs are run".
    # e0 improves on inf; e1..e3 wait = 1, 2, 3; 3 >= 3 at epoch 3 -> stop.
    es = EarlyStopping(monitor="loss", patience=3)
    ran = fit(make_model(), [es], [{"loss": 1.0}] * 10)
    assert ran == [0, 1, 2, 3]
    assert (es.stopped_epoch, es.best_epoch, es.best, es.wait) == (3, 0, 1.0, 3)


def test_early_stopping_patience_counts_epochs_without_improvement():
    # Keras trace, patience=2: e0 best=1.0 wait 0; e1 0.9 best wait 0; e2 wait 1;
    # e3 0.92 is not < 0.9, wait 2 >= 2 -> stop at epoch 3.
    es = EarlyStopping(patience=2)
    ran = fit(make_model(), [es], logs_of("val_loss", [1.0, 0.9, 0.95, 0.92, 0.8, 0.7]))
    assert ran == [0, 1, 2, 3]
    assert (es.stopped_epoch, es.best_epoch, es.best) == (3, 1, 0.9)
    assert es.model.stop_reason == ("EarlyStopping: val_loss did not improve for 2 epochs "
                                    "(best 0.9 at epoch 2); stopped after epoch 4")


def test_early_stopping_min_delta_ignores_small_improvements():
    # Keras trace, min_delta=0.1 (min mode: current + 0.1 < best), patience=2:
    # e0 best 1.0; e1 0.95 -> wait 1; e2 0.85 -> best, wait 0; e3 wait 1; e4 0.79 -> wait 2, stop.
    es = EarlyStopping(monitor="loss", min_delta=0.1, patience=2)
    ran = fit(make_model(), [es], [{"loss": v} for v in [1.0, 0.95, 0.85, 0.80, 0.79, 0.1]])
    assert ran == [0, 1, 2, 3, 4]
    assert (es.stopped_epoch, es.best_epoch, es.best) == (4, 2, 0.85)
    # its sign is ignored, as in Keras (abs(min_delta))
    assert EarlyStopping(min_delta=-0.1).min_delta == 0.1


def test_early_stopping_mode_auto_maximizes_accuracy():
    # "acc" in the name -> max. e0 0.5; e1 0.6 best; e2 0.6 is not > 0.6: wait 1 >= 1 -> stop.
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    ran = fit(make_model(), [es], logs_of("val_accuracy", [0.5, 0.6, 0.6, 0.9]))
    assert es.direction == "max" and ran == [0, 1, 2] and es.best_epoch == 1
    # explicit mode="min" on the same name flips it: e1 0.6 is no improvement -> stop at 1
    es = EarlyStopping(monitor="val_accuracy", patience=1, mode="min")
    assert fit(make_model(), [es], logs_of("val_accuracy", [0.5, 0.6, 0.6, 0.9])) == [0, 1]


def test_early_stopping_baseline_never_reached_runs_patience_epochs():
    # Keras doc: "If no epoch improves on baseline, training will run for patience epochs".
    # e0 improves on inf but not on the baseline: wait stays 1; e1 no improvement, wait 2 -> stop.
    es = EarlyStopping(patience=2, baseline=0.5)
    assert fit(make_model(), [es], logs_of("val_loss", [0.9, 0.95, 0.97, 0.1])) == [0, 1]


def test_early_stopping_baseline_keeps_counting_while_improving_above_it():
    # Keras trace: improvements above the baseline return early (no stop) but do not reset
    # wait, so wait is 4 after e3 and the first non-improving epoch (e4) stops at once.
    es = EarlyStopping(patience=2, baseline=0.5)
    ran = fit(make_model(), [es], logs_of("val_loss", [0.9, 0.8, 0.7, 0.6, 0.65, 0.4]))
    assert ran == [0, 1, 2, 3, 4] and es.best_epoch == 3 and es.wait == 5
    # beating the baseline resets the counter: e0 0.4 wait 0; e1 wait 1; e2 wait 2 -> stop
    es = EarlyStopping(patience=2, baseline=0.5)
    assert fit(make_model(), [es], logs_of("val_loss", [0.4, 0.45, 0.46, 0.3])) == [0, 1, 2]


def test_early_stopping_start_from_epoch_and_never_at_epoch_zero():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # patience 0 without warm-up: e1 is worse than e0 -> stop at epoch 1
    assert fit(make_model(), [EarlyStopping(patience=0)], logs_of("val_loss", values)) == [0, 1]
    # warm-up of 2 epochs: e2 is the first monitored (improves on inf), e3 worse -> stop at 3
    es = EarlyStopping(patience=0, start_from_epoch=2)
    assert fit(make_model(), [es], logs_of("val_loss", values)) == [0, 1, 2, 3]
    assert es.best_epoch == 2
    # a NaN at epoch 0 is no improvement, but Keras never stops at epoch 0
    es = EarlyStopping(patience=0)
    assert fit(make_model(), [es], logs_of("val_loss", [NAN, 1.0, 1.1, 0.5])) == [0, 1, 2]


def test_early_stopping_restores_best_weights_when_it_stops():
    model = make_model()
    es = EarlyStopping(patience=2, restore_best_weights=True)
    ran = fit(model, [es], logs_of("val_loss", [1.0, 0.9, 0.95, 0.92, 0.8]))
    assert ran == [0, 1, 2, 3]
    assert_weights(model, 1)


def test_early_stopping_restores_best_weights_at_end_without_stopping():
    model = make_model()
    es = EarlyStopping(patience=10, restore_best_weights=True)
    assert fit(model, [es], logs_of("val_loss", [1.0, 0.5, 0.7, 0.6])) == [0, 1, 2, 3]
    assert es.stopped_epoch == 0
    assert_weights(model, 1)
    # and without restore_best_weights the last epoch's weights stay
    model = make_model()
    fit(model, [EarlyStopping(patience=10)], logs_of("val_loss", [1.0, 0.5, 0.7, 0.6]))
    assert_weights(model, 3)


def test_early_stopping_best_weights_are_a_device_copy_not_a_view():
    model = make_model()
    es = EarlyStopping(monitor="loss", restore_best_weights=True, patience=5)
    es.set_model(model)
    es.on_train_begin({})
    stamp(model, 0)
    es.on_epoch_end(0, {"loss": 1.0})
    stamp(model, 1)  # training goes on in place; the copy must not follow
    np.testing.assert_array_equal(host(es.best_weights), weights_of(0))
    assert type(es.best_weights) is type(model.flat_params)


def test_early_stopping_restores_on_the_model_device(device):
    model = make_model(device)
    es = EarlyStopping(patience=1, restore_best_weights=True)
    assert fit(model, [es], logs_of("val_loss", [0.5, 0.2, 0.3, 0.1])) == [0, 1, 2]
    assert gn.backend.device_of(es.best_weights) == device
    assert_weights(model, 1)
    for layer in model.layers:  # the layers' parameters are views of the restored buffer
        np.testing.assert_array_equal(host(layer.params["W"]).ravel(), weights_of(1)[:6])


def test_early_stopping_missing_monitor_warns_with_available_keys():
    es = EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="`val_loss`.*Available metrics are: loss,accuracy"):
        ran = fit(make_model(), [es], [{"loss": 1.0, "accuracy": 0.5}] * 3)
    assert ran == [0, 1, 2] and es.stopped_epoch == 0


def test_early_stopping_is_reusable():
    es = EarlyStopping(patience=1)
    assert fit(make_model(), [es], logs_of("val_loss", [0.5, 0.6, 0.7])) == [0, 1]
    # a second fit starts afresh: best is reset, so 0.9 at epoch 0 counts as an improvement
    assert fit(make_model(), [es], logs_of("val_loss", [0.9, 0.8, 0.85])) == [0, 1, 2]
