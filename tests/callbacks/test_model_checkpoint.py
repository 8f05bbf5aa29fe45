"""ModelCheckpoint: writes on improvement, file contents, path formatting, missing monitor."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.callbacks import ModelCheckpoint
from tests.callbacks.helpers import fit, logs_of, make_model, saved_weights, weights_of


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


def test_model_checkpoint_saves_nothing_from_a_diverged_epoch(tmp_path):
    """A loss that became NaN/inf leaves `model.nonfinite` set; the weights of that epoch (or the
    ones TerminateOnNaN put back) are never written, even with save_best_only=False."""
    gn.seed(0)
    model = gn.Sequential([gn.layers.Dense(4, 3)], device="cpu")
    model.compile(loss="mse", optimizer=gn.optimizers.SGD(lr=1e30))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 1e3
    y = np.eye(3, dtype=np.float32)[np.arange(64) % 3]
    fit_cbs = [gn.callbacks.TerminateOnNaN(),
               ModelCheckpoint(tmp_path / "every.npz", monitor="loss", save_best_only=False)]
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=fit_cbs)
    assert model.nonfinite and "diverged" in model.nonfinite
    assert not (tmp_path / "every.npz").exists()
