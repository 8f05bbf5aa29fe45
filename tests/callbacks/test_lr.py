"""ReduceLROnPlateau (traced by hand from Keras), LearningRateScheduler, CosineAnnealing."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpunet as gn
from gpunet.callbacks import CosineAnnealing, LearningRateScheduler, ReduceLROnPlateau
from tests.callbacks.helpers import fit, logs_of, lr_history, make_model


def test_reduce_lr_on_plateau_cooldown_and_min_lr():
    # Keras trace (patience 1, cooldown 2, factor 0.5, min_lr 0.02, flat val_loss):
    # e1 wait 1 -> 0.05, cooldown 2; e2 cooldown -> 1, skipped; e3 cooldown -> 0 then wait 1
    # -> 0.025; e4 skipped; e5 -> max(0.0125, 0.02); e6 skipped; e7 at min_lr: unchanged.
    cb = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.02)
    lrs = lr_history([cb], logs_of("val_loss", [1.0] * 8))
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])


def test_reduce_lr_on_plateau_min_delta_patience_and_mode_max():
    # min_delta 0.1: e1 0.95 is not < 1.0 - 0.1 (wait 1); e2 0.85 is (best, wait 0);
    # e3 wait 1; e4 wait 2 -> lr * 0.1.
    cb = ReduceLROnPlateau(patience=2, min_delta=0.1)
    lrs = lr_history([cb], logs_of("val_loss", [1.0, 0.95, 0.85, 0.84, 0.83]))
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.1, 0.01])
    assert cb.best == 0.85
    cb = ReduceLROnPlateau(monitor="val_accuracy", patience=1, min_delta=0.0)
    lrs = lr_history([cb], logs_of("val_accuracy", [0.5, 0.6, 0.6, 0.7]))
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01])


def test_reduce_lr_on_plateau_treats_min_lr_in_float32_like_keras():
    # Keras tests `old_lr > np.float32(min_lr)`: an lr already at min_lr is left alone. The
    # callback compares both sides in float32 explicitly (under NumPy 1 a Python-float lr of
    # 1e-4 would compare as 1e-4 > 9.99...e-5 and "reduce" again, resetting the wait counter).
    cb = ReduceLROnPlateau(patience=1, min_lr=1e-4)
    lrs = lr_history([cb], logs_of("val_loss", [1.0, 1.0, 1.0, 1.0]), lr=1e-3)
    assert lrs == [1e-3, 1e-4, 1e-4, 1e-4]
    assert cb.wait == 2  # e1 reduced (wait 0); e2, e3 only counted


def test_learning_rate_scheduler_both_signatures():
    seen = []

    def probe(epoch):
        seen.append(model.optimizer.lr)

    model = make_model(lr=0.8)
    fit(model, [LearningRateScheduler(lambda epoch, lr: lr * 0.5)], [{"loss": 1.0}] * 3,
        probe=probe)
    assert seen == [0.4, 0.2, 0.1]  # set at epoch begin, before the epoch trains
    seen.clear()
    model = make_model()
    fit(model, [LearningRateScheduler(lambda epoch: 1.0 / (epoch + 1))], [{"loss": 1.0}] * 3,
        probe=probe)
    assert seen == [1.0, 0.5, 1.0 / 3]


def test_learning_rate_scheduler_rejects_bad_lr_and_keeps_schedule_errors():
    with pytest.raises(ValueError, match=r"LearningRateScheduler: schedule\(0\).*'fast'"):
        fit(make_model(), [LearningRateScheduler(lambda e: "fast")], [{"loss": 1.0}])

    def broken(epoch, lr):
        raise TypeError("bug inside the schedule")

    with pytest.raises(TypeError, match="bug inside the schedule"):
        fit(make_model(), [LearningRateScheduler(broken)], [{"loss": 1.0}])


def test_cosine_annealing_values():
    seen = []
    model = make_model(lr=0.1)
    fit(model, [CosineAnnealing(total_epochs=4, min_lr=0.0)], [{"loss": 1.0}] * 6,
        probe=lambda e: seen.append(model.optimizer.lr))
    s = math.sqrt(2) / 2
    np.testing.assert_allclose(seen, [0.1, 0.05 * (1 + s), 0.05, 0.05 * (1 - s), 0.0, 0.0],
                               atol=1e-15)
    cb = CosineAnnealing(total_epochs=10, min_lr=0.01, initial_lr=0.5)
    cb.set_model(make_model(lr=123.0))  # an explicit initial_lr wins over the optimizer's
    cb.on_train_begin({})
    assert [cb.lr_at(e) for e in (0, 5, 10, 11)] == pytest.approx([0.5, 0.255, 0.01, 0.01])


def test_lr_callbacks_need_an_optimizer():
    cb = CosineAnnealing(5)
    cb.set_model(gn.Sequential([gn.layers.Dense(3, 2)], device="cpu"))
    with pytest.raises(ValueError, match="CosineAnnealing: the model has no optimizer"):
        cb.on_train_begin({})
