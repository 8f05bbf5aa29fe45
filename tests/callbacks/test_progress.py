"""ProgressBar: one summary line per epoch off a terminal, silent with verbose=0, a bar that
follows the batches on a terminal."""

from __future__ import annotations

import io

from gpunet.callbacks import ProgressBar
from gpunet.callbacks.progress import format_epoch
from tests.training.test_fit import blobs, small_model


def test_progress_is_one_line_per_epoch_off_a_terminal_and_silent_with_verbose_0(capsys):
    x, y = blobs(100)
    small_model().fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    small_model().fit(x, y, epochs=2, verbose=1, validation_split=0.2)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2") and "val_accuracy" in lines[1]
    assert "batch/s" not in out.err and "it/s" not in out.err  # no bar when not a terminal


def test_the_bar_counts_batches_as_they_are_reported(monkeypatch):
    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", err)
    bar = ProgressBar(verbose=1, epochs=2, steps=10)
    bar.on_epoch_begin(0)
    bar.on_batch_end(3, {"loss": 0.5})
    bar.on_batch_end(9, {"loss": 0.25})
    assert bar._bar.n == 10
    bar.on_train_end({})  # an interrupted epoch: the bar is closed
    assert bar._bar is None


def test_format_epoch():
    line = format_epoch(1, 3, {"loss": 0.5, "val_accuracy": 0.875, "seconds": 1.234,
                               "images_per_second": 12345.6, "lr": 0.1})
    assert line == "epoch 2/3  loss 0.5000  val_accuracy 0.8750  1.23s  12,346 img/s"
