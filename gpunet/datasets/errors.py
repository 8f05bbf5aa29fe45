"""Exceptions raised by `gpunet.datasets`; every message names the file or folder concerned."""

from __future__ import annotations


class DatasetError(ValueError):
    """A data file is corrupt, truncated, of the wrong kind, or could not be fetched."""


class DatasetUnavailableError(DatasetError):
    """The files are not on disk and could not be downloaded (offline, mirror down, bad checksum).

    The message lists the missing files, the folder to put them in and where they come from.
    `load_mnist_default` catches exactly this error to fall back to the bundled 5k sample.
    """
