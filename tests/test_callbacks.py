"""Callbacks driven by scripted losses through a tiny stand-in for the trainer.

Each epoch's "training" writes distinct values into `model.flat_params` (see `stamp`), so a test
can say exactly which epoch's weights a callback restored or saved. Expected EarlyStopping and
ReduceLROnPlateau behaviour is traced by hand from keras/src/callbacks/*.py (Keras is not a
dependency); each trace is written next to its test.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpunet as gn
from gpunet.callbacks import (
    Callback,
    CallbackList,
    CosineAnnealing,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
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


# -- EarlyStopping ---------------------------------------------------------------------------
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


# -- ModelCheckpoint --------------------------------------------------------------------------
def saved_weights(path: Path) -> np.ndarray:
    return host(gn.load_model(path, device="cpu").flat_params)


def test_model_checkpoint_writes_only_on_improvement(tmp_path):
    model = make_model()
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz")
    fit(model, [ckpt], logs_of("val_loss", [1.0, 0.8, 0.9, 0.7, 0.7]))
    # {epoch} is 1-based as in Keras: epochs 0, 1, 3 improved
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-01.npz", "ckpt-02.npz", "ckpt-04.npz"]
    for name, epoch in [("ckpt-01.npz", 0), ("ckpt-02.npz", 1), ("ckpt-04.npz", 3)]:
        np.testing.assert_array_equal(saved_weights(tmp_path / name), weights_of(epoch))
    assert (ckpt.best, ckpt.best_epoch, ckpt.last_saved) == (0.7, 3,
                                                             str(tmp_path / "ckpt-04.npz"))


def test_model_checkpoint_single_file_holds_best_epoch_and_no_temp_file(tmp_path):
    model = make_model()
    fit(model, [ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy")],
        logs_of("val_accuracy", [0.5, 0.7, 0.6, 0.65]))
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]  # no .best.npz.*.tmp left
    np.testing.assert_array_equal(saved_weights(tmp_path / "best.npz"), weights_of(1))
    loaded = gn.load_model(tmp_path / "best.npz", device="cpu")
    assert loaded.architecture() == model.architecture()


def test_model_checkpoint_logs_fields_save_all_and_missing_monitor(tmp_path):
    fit(make_model(), [ModelCheckpoint(tmp_path / "e{epoch}-{val_loss:.1f}.npz",
                                       save_best_only=False)],
        logs_of("val_loss", [0.5, 0.6]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1-0.5.npz", "e2-0.6.npz"]
    with pytest.warns(UserWarning, match="Available metrics are: loss"):
        fit(make_model(), [ModelCheckpoint(tmp_path / "none.npz")], [{"loss": 1.0}])
    assert not (tmp_path / "none.npz").exists()
    with pytest.raises(ValueError, match=r"filepath .* could not be formatted \(KeyError"):
        fit(make_model(), [ModelCheckpoint(tmp_path / "{step}.npz")], [{"val_loss": 1.0}])


# -- TerminateOnNaN ---------------------------------------------------------------------------
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


# -- CSVLogger --------------------------------------------------------------------------------
def test_csv_logger_rows_header_and_flush_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    seen = []

    class Reader(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(path.read_text().count("\n"))

    logs = [{"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "lr": 0.1},
            {"loss": 0.25, "accuracy": 0.9, "val_loss": 0.4, "lr": 0.05}]
    fit(make_model(), [CSVLogger(path), Reader()], logs)
    assert seen == [2, 3]  # header + one row on disk at the end of every epoch
    assert path.read_text() == ("epoch,accuracy,loss,lr,val_loss\n"
                                "0,0.8,0.5,0.1,0.6\n"
                                "1,0.9,0.25,0.05,0.4\n")


def test_csv_logger_separator_missing_keys_and_append(tmp_path):
    path = tmp_path / "sub" / "log.tsv"
    fit(make_model(), [CSVLogger(path, separator="\t")], [{"loss": 1.5, "b": 2}, {"loss": 1.0}])
    assert path.read_text() == "epoch\tb\tloss\n0\t2\t1.5\n1\tNA\t1.0\n"
    # append continues under the existing header; a fresh logger without append truncates
    with pytest.warns(UserWarning, match=r"dropping keys \['c'\]"):
        fit(make_model(), [CSVLogger(path, separator="\t", append=True)],
            [{"loss": 0.5, "b": 3, "c": 4}])
    assert path.read_text().splitlines()[-1] == "0\t3\t0.5"
    assert path.read_text().count("epoch") == 1
    fit(make_model(), [CSVLogger(path, separator="\t")], [{"loss": 0.1}])
    assert path.read_text() == "epoch\tloss\n0\t0.1\n"


# -- learning rate ----------------------------------------------------------------------------
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


# -- resumable state --------------------------------------------------------------------------
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

def test_callback_list_refuses_state_of_other_callbacks():
    state = CallbackList([EarlyStopping()]).get_state()
    with pytest.raises(ValueError, match=r"\['EarlyStopping'\] but these are \['CSVLogger'\]"):
        CallbackList([CSVLogger("x.csv")]).set_state(state, {})
    with pytest.raises(TypeError, match="callbacks\\[0\\] must be a gpunet Callback"):
        CallbackList([object()])


def test_restore_rejects_weights_of_another_model():
    es = EarlyStopping(restore_best_weights=True)
    es.set_model(make_model())
    es.set_state({"wait": 0, "stopped_epoch": 0, "best": 0.1, "best_epoch": 0},
                 {"best_weights": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="EarlyStopping: saved weights hold 5 values"):
        es.on_train_end({})


# -- argument checks --------------------------------------------------------------------------
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


def test_lr_callbacks_need_an_optimizer():
    cb = CosineAnnealing(5)
    cb.set_model(gn.Sequential([gn.layers.Dense(3, 2)], device="cpu"))
    with pytest.raises(ValueError, match="CosineAnnealing: the model has no optimizer"):
        cb.on_train_begin({})
