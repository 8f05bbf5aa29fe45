"""CSVLogger: header, one flushed row per epoch, separator, missing keys, append."""

from __future__ import annotations

import pytest

from gpunet.callbacks import Callback, CSVLogger
from tests.callbacks.helpers import fit, make_model


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
