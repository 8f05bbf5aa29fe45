"""CSVLogger: one row of epoch metrics per epoch, flushed to disk as soon as it is written."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Any

from gpunet.callbacks.base import (
    Callback,
    Logs,
)
from gpunet.checks import check_bool, fail


class CSVLogger(Callback):
    """Append `epoch` (0-based, as Keras writes it) and the epoch's logs to a CSV file.

    The header is "epoch" then the first epoch's log keys, sorted (as Keras). The file is opened,
    written and closed every epoch, so each row is on disk even if training is killed. Later
    epochs missing a key get "NA"; keys that were not in the header are dropped with a warning.
    With `append=True` an existing file is continued and its header reused.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        name = "CSVLogger"
        if not isinstance(filename, (str, os.PathLike)) or not os.fspath(filename):
            raise fail(name, "filename", "a non-empty path (str or os.PathLike)", filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise fail(name, "separator", "a single character", separator)
        self.filename = Path(filename)
        self.separator = separator
        self.append = check_bool(name, "append", append)
        self.keys: list[str] | None = None
        self._warned_extra = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if not self._fresh_start():
            return  # resuming: keep appending under the header already written
        self._warned_extra = False
        self.keys = None
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        if self.append and self.filename.is_file():
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            if header and header[0] == "epoch":
                self.keys = header[1:]
        else:
            self.filename.write_text("")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = dict(logs or {})
        write_header = self.keys is None
        if self.keys is None:
            self.keys = sorted(logs)
        extra = sorted(set(logs) - set(self.keys) - {"epoch"})
        if extra and not self._warned_extra:
            warnings.warn(f"CSVLogger: dropping keys {extra} that are not in the header of "
                          f"{self.filename} (columns: {self.keys})", stacklevel=2)
            self._warned_extra = True
        row = [epoch] + [logs.get(k, "NA") for k in self.keys]
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if write_header:
                writer.writerow(["epoch", *self.keys])
            writer.writerow(row)
            f.flush()

    # -- resumable state ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"keys": self.keys}

    def set_state(self, state: dict[str, Any], arrays: dict[str, Any] | None = None) -> None:
        super().set_state(state, arrays)
        self.keys = None if state["keys"] is None else list(state["keys"])

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.filename)!r})"
