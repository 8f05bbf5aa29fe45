"""TerminateOnNaN: stops on a non-finite loss and restores the best weights seen."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gpunet.callbacks import TerminateOnNaN
from tests.callbacks.helpers import NAN, assert_weights, fit, logs_of, make_model
from tests.helpers import host


def test_terminate_on_nan_at_a_batch_names_epoch_and_batch_and_restores_best():
    model = make_model()
    nan_cb = TerminateOnNaN()
    batches = {2: [{"loss": 0.3}, {}, {"loss": NAN}, {"loss": 0.2}]}
    logs = logs_of("val_loss", [0.4, 0.6, 0.5, 0.1])
    with pytest.warns(RuntimeWarning, match="TerminateOnNaN"):
        ran = fit(model, [nan_cb], logs, batch_logs=batches)
    assert ran == [0, 1, 2] and model.stop_training
    assert (nan_cb.epoch, nan_cb.batch) == (2, 2)
    assert "epoch 3, batch 3" in nan_cb.message and "epoch=2, batch=2" in nan_cb.message
    assert "end of epoch 1 (val_loss=0.4)" in nan_cb.message  # best by val_loss, not the last
    assert model.stop_reason == nan_cb.message
    assert_weights(model, 0)


def test_terminate_on_nan_epoch_loss_without_batch_losses():
    model = make_model()
    nan_cb = TerminateOnNaN()
    logs = [{"loss": 0.9}, {"loss": 0.5}, {"loss": math.inf}, {"loss": 0.1}]
    with pytest.warns(RuntimeWarning, match=r"loss is inf at epoch 3, batch 2"):
        assert fit(model, [nan_cb], logs) == [0, 1, 2]
    assert_weights(model, 1)  # no val_loss: best by loss


def test_terminate_on_nan_before_any_epoch_end_restores_initial_weights():
    model = make_model()
    initial = host(model.flat_params).copy()
    nan_cb = TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match="weights from before training"):
        ran = fit(model, [nan_cb], [{"loss": 1.0}] * 3, batch_logs={0: [{"loss": NAN}]})
    assert ran == [0] and "epoch 1, batch 1" in nan_cb.message
    np.testing.assert_array_equal(host(model.flat_params), initial)


def test_terminate_on_nan_finite_run_changes_nothing():
    model = make_model()
    nan_cb = TerminateOnNaN()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ran = fit(model, [nan_cb], [{"loss": v} for v in [0.5, 0.3, 0.4]],
                  batch_logs={1: [{"loss": 0.3}, {"loss": 0.2}]})
    assert ran == [0, 1, 2] and nan_cb.message is None and not model.stop_training
    assert_weights(model, 2)  # it only restores when it terminates
    assert nan_cb.best_epoch == 1
