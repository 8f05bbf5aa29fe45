"""The training loop: learning, validation split, reproducibility, NaN, resume, Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.training import batches as batch_mod
from gpunet.training.data import split_validation
from tests.helpers import host


def blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4-D: easy to separate, quick to train."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[2, 0, 0, 1], [0, 2, 0, -1], [0, 0, 2, 0]], np.float32)
    x = centers[y] + rng.normal(scale=0.5, size=(n, 4)).astype(np.float32)
    return x.astype(np.float32), y


def small_model(device: str = "cpu", lr: float = 0.05) -> gn.Sequential:
    L = gn.layers
    model = gn.Sequential([L.Dense(4, 16), L.ReLU(), L.Dense(16, 3)], device=device)
    model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=lr, momentum=0.9),
                  metrics=["accuracy"])
    return model


def test_fit_learns_and_reports_history(device):
    x, y = blobs()
    model = small_model(device)
    hist = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.2, verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second"):
        assert len(hist.history[key]) == 5, key
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["val_accuracy"][-1] > 0.9
    result = model.evaluate(x, y)
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] > 0.9
    pred = model.predict(x[:10])
    assert isinstance(pred, np.ndarray) and pred.shape == (10, 3)


def test_no_validation_unless_asked():
    x, y = blobs(100)
    hist = small_model().fit(x, y, epochs=1, verbose=0)
    assert "val_loss" not in hist.history


def test_validation_split_takes_the_last_fraction_and_refuses_empty_sides():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    xt, yt, xv, yv = split_validation(x, y, 0.3)
    assert yt.tolist() == list(range(7)) and yv.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="validation_split=0.05 of 10 samples leaves 10"):
        split_validation(x, y, 0.05)
    with pytest.raises(ValueError, match=r"validation_split must be in \(0, 1\)"):
        split_validation(x, y, 1.0)


def test_same_seed_gives_identical_history_on_cpu():
    x, y = blobs()
    runs = []
    for _ in range(2):
        gn.seed(3)
        L = gn.layers  # dropout masks come from the seeded RNG too
        model = gn.Sequential([L.Dense(4, 16), L.ReLU(), L.Dropout(0.2), L.Dense(16, 3)],
                              device="cpu")
        model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.05, momentum=0.9),
                      metrics=["accuracy"])
        hist = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.1, verbose=0)
        runs.append(({k: v for k, v in hist.history.items()
                      if k not in ("seconds", "images_per_second")}, host(model.flat_params)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_bad_inputs_are_clear_errors():
    model = small_model()
    x, y = blobs(50)
    with pytest.raises(ValueError, match="same length"):
        model.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*\[0, 7\]"):
        model.fit(x, np.where(y == 2, 7, y), verbose=0)
    with pytest.raises(ValueError, match=r"samples must have shape \(4,\).*got \(5,\)"):
        model.fit(np.zeros((50, 5), np.float32), y, verbose=0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(bad, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        gn.Sequential([gn.layers.Dense(4, 3)], device="cpu").fit(x, y, verbose=0)


def test_diverging_loss_is_reported_not_trained_on():
    x, y = blobs(200)
    x = x * 1e30
    model = small_model(lr=1e10)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch \d+"):
        model.fit(x, y, epochs=3, batch_size=20, verbose=0)
    model = small_model(lr=1e10)
    stopper = gn.callbacks.TerminateOnNaN()
    hist = model.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[stopper])
    assert "epoch" in stopper.message and "batch" in stopper.message
    assert len(hist.epoch) <= 1


def _run(tmp_path, epochs, resume=None, interrupt_at=None, seed=5, device="cpu",
         dropout=0.0, workers="auto"):
    x, y = blobs(300)
    gn.seed(seed)
    model = small_model(device)
    if dropout:  # draws on every batch: resume must replay the generator too
        L = gn.layers
        model = gn.Sequential([L.Dense(4, 16), L.ReLU(), L.Dropout(dropout), L.Dense(16, 3)],
                              device=device)
        model.compile(loss="crossentropy", optimizer=gn.optimizers.SGD(lr=0.05, momentum=0.9))
    cbs = [gn.callbacks.EarlyStopping(monitor="val_loss", patience=50,
                                      restore_best_weights=False)]
    if interrupt_at is not None:
        class Interrupt(gn.callbacks.Callback):
            def on_batch_end(self, batch, logs=None):
                if self._epoch == interrupt_at and batch == 2:
                    raise KeyboardInterrupt

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

        cbs = cbs + [Interrupt()]
    hist = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0,
                     callbacks=cbs[:1] if resume else cbs, checkpoint=tmp_path / "ck.npz",
                     resume=resume, workers=workers)
    return model, hist


def test_ctrl_c_keeps_a_resumable_checkpoint_and_resume_is_exact(tmp_path):
    straight, h1 = _run(tmp_path / "a", epochs=5)
    _, h2 = _run(tmp_path / "b", epochs=5, interrupt_at=3)
    assert h2.stop_reason.startswith("interrupted") and len(h2.epoch) == 3
    resumed, h3 = _run(tmp_path / "b", epochs=5, resume=tmp_path / "b" / "ck.npz", seed=99)
    np.testing.assert_array_equal(host(resumed.flat_params), host(straight.flat_params))
    assert h3.history["val_loss"] == h1.history["val_loss"]


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_with_dropout_is_exact(tmp_path, device, workers):
    if device == "gpu" and workers > 1:
        pytest.skip("workers share batches on the CPU only")
    kw = {"device": device, "dropout": 0.3, "workers": workers}
    straight, h1 = _run(tmp_path / "a", epochs=4, **kw)
    _run(tmp_path / "b", epochs=4, interrupt_at=2, **kw)
    resumed, h3 = _run(tmp_path / "b", epochs=4, resume=tmp_path / "b" / "ck.npz", seed=99, **kw)
    np.testing.assert_array_equal(host(resumed.flat_params), host(straight.flat_params))
    assert h3.history["val_loss"] == h1.history["val_loss"]


def test_resume_refuses_a_different_model(tmp_path):
    _run(tmp_path, epochs=1)
    L = gn.layers
    other = gn.Sequential([L.Dense(4, 8), L.ReLU(), L.Dense(8, 3)], device="cpu")
    other.compile(optimizer=gn.optimizers.SGD(lr=0.1, momentum=0.9))
    x, y = blobs(50)
    with pytest.raises(ValueError, match="architecture differs"):
        other.fit(x, y, epochs=2, verbose=0, resume=tmp_path / "ck.npz",
                  callbacks=[gn.callbacks.EarlyStopping(patience=50)])


def test_host_batches_cover_every_sample_once():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.arange(10)
    order = np.random.default_rng(0).permutation(10)
    got = [yb for _, yb in batch_mod.HostBatches(x, y, 4).epoch(order)]
    assert [len(b) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate(got).tolist()) == list(range(10))


def test_one_hot_targets_give_the_same_accuracy_as_labels():
    x, y = blobs(300)
    onehot = np.eye(3, dtype=np.float32)[y]
    hists = []
    for targets in (y, onehot):
        gn.seed(1)
        hists.append(small_model().fit(x, targets, epochs=3, batch_size=32, verbose=0,
                                       validation_split=0.2, shuffle=False).history)
    assert hists[1]["accuracy"][-1] > 0.9
    assert hists[1]["accuracy"] == hists[0]["accuracy"]
    assert hists[1]["val_accuracy"] == hists[0]["val_accuracy"]


def test_early_stopping_on_training_accuracy_with_one_hot_targets():
    x, y = blobs(300)
    onehot = np.eye(3, dtype=np.float32)[y]
    model = small_model(lr=0.02)
    stopper = gn.callbacks.EarlyStopping(monitor="accuracy", patience=2,
                                         restore_best_weights=True)
    hist = model.fit(x, onehot, epochs=30, batch_size=32, verbose=0, callbacks=[stopper])
    acc = hist.history["accuracy"]
    assert max(acc) > 0.9 and stopper.best == max(acc)
    assert stopper.best_epoch == int(np.argmax(acc))
    assert len(acc) < 30 and hist.stop_reason.startswith("EarlyStopping: accuracy")


def test_fit_history_is_a_callback_and_model_history():
    x, y = blobs(100)
    model = small_model()
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert isinstance(hist, gn.callbacks.History) and model.history is hist
    assert hist.epoch == [0, 1] and hist.stop_reason == ""


@pytest.mark.parametrize("kwargs,error,match", [
    ({"validation_data": (np.zeros((4, 4), np.float32),)}, ValueError,
     r"fit: validation_data must be a tuple \(x_val, y_val\), got tuple of length 1"),
    ({"validation_data": np.zeros((4, 4), np.float32)}, ValueError,
     r"fit: validation_data must be a tuple \(x_val, y_val\), got ndarray"),
    ({"callbacks": [print]}, TypeError,
     r"fit: callbacks\[0\] must be a gpunet Callback .*builtin_function_or_method"),
    ({"callbacks": print}, TypeError, r"fit: callbacks must be a list"),
    ({"epochs": 0}, ValueError, r"fit: epochs must be a positive int, got 0"),
    ({"epochs": 1.0}, ValueError, r"fit: epochs must be a positive int, got 1.0"),
    ({"batch_size": -5}, ValueError, r"fit: batch_size must be a positive int, got -5"),
    ({"log_every": True}, ValueError, r"fit: log_every must be a positive int, got True"),
])
def test_bad_fit_arguments_are_one_clear_error(kwargs, error, match):
    x, y = blobs(20)
    with pytest.raises(error, match=match):
        small_model().fit(x, y, verbose=0, **kwargs)


def test_numpy_integers_are_ints():
    x, y = blobs(64)
    model = small_model()
    hist = model.fit(x, y, epochs=np.int64(2), batch_size=np.int32(16), verbose=0,
                     log_every=np.int64(3), workers=np.int64(1),
                     callbacks=[gn.callbacks.EarlyStopping(patience=np.int64(3))])
    assert len(hist.epoch) == 2
    assert model.evaluate(x, y, batch_size=np.int64(8), workers=np.int16(1))["accuracy"] >= 0
    assert model.predict(x, batch_size=np.uint8(10)).shape == (64, 3)


def test_a_callback_that_handles_nonfinite_losses_is_known_by_its_flag_not_its_name():
    x, y = blobs(200)
    x = x * 1e30

    class Watch(gn.callbacks.Callback):
        handles_nonfinite = True

    model = small_model(lr=1e10)
    hist = model.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[Watch()])
    assert model.nonfinite.startswith("the loss became") and "that batch was not" in \
        model.nonfinite
    assert hist.stop_reason == model.nonfinite and len(hist.epoch) == 1


def test_checkpoint_holds_the_callbacks_in_the_callback_lists_format(tmp_path):
    x, y = blobs(100)
    model = small_model()
    model.fit(x, y, epochs=2, verbose=0, checkpoint=tmp_path / "c.npz",
              callbacks=[gn.callbacks.EarlyStopping(patience=5, monitor="loss")])
    arrays, meta = gn.serialization.read_npz(tmp_path / "c.npz")
    names = [c["class"] for c in meta["callbacks"]["callbacks"]]
    assert names == ["EarlyStopping", "History", "ProgressBar"]
    assert meta["callbacks"]["callbacks"][1]["state"]["epoch"] == [0, 1]
    assert arrays["callbacks/1.loss"].shape == (2,)
    resumed = small_model()
    hist = resumed.fit(x, y, epochs=3, verbose=0, resume=tmp_path / "c.npz")  # no EarlyStopping
    assert hist.epoch == [0, 1, 2] and len(hist.history["loss"]) == 3


def test_interrupt_promises_only_a_checkpoint_this_fit_wrote(tmp_path, capsys):
    """fit(resume=a, checkpoint=b) stopped in its first epoch never wrote b: no promise."""
    x, y = blobs(200)
    _run(tmp_path, epochs=2)  # writes tmp_path/ck.npz after 2 epochs

    class Interrupt(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    gn.seed(5)
    model = small_model()
    hist = model.fit(x, y, epochs=4, batch_size=32, verbose=1, callbacks=[Interrupt()],
                     resume=tmp_path / "ck.npz", checkpoint=tmp_path / "other.npz")
    out = capsys.readouterr().out
    assert hist.stop_reason == "interrupted during epoch 3"
    assert "resumable checkpoint" not in out and not (tmp_path / "other.npz").exists()


def test_an_unwritable_checkpoint_path_is_refused_before_training(tmp_path):
    x, y = blobs(100)
    model = small_model()
    before = model.flat_params.copy()
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(OSError, match="folder.npz"):
        model.fit(x, y, epochs=1, verbose=0, checkpoint=tmp_path / "folder.npz")
    np.testing.assert_array_equal(model.flat_params, before)
