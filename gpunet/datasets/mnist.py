"""Loaders for MNIST, its bundled 5k sample, and Fashion-MNIST.

Every loader returns `(x_train, y_train), (x_test, y_test)`: uint8 images of shape (N, 28, 28)
and uint8 labels 0-9 of shape (N,). Use `to_float` to feed them to a model. Where the files are
looked for, and how missing ones are downloaded, is described in `gpunet.datasets.sources`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from gpunet.datasets.errors import DatasetError, DatasetUnavailableError
from gpunet.datasets.idx import read_idx
from gpunet.datasets.sources import DataSource, locate
from gpunet.datasets.transforms import shuffled

Split = tuple[np.ndarray, np.ndarray]
Splits = tuple[Split, Split]
PathLike = str | os.PathLike | None
SUBSETS = (None, "full", "5k")


def _read_split(images_path, labels_path) -> Split:
    x, y = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if x.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path}: images are {x.shape[1]}x{x.shape[2]}, "
                           "expected 28x28")
    if len(x) != len(y):
        raise DatasetError(f"{images_path} holds {len(x)} images but {labels_path} holds "
                           f"{len(y)} labels")
    if y.size and y.max() > 9:
        raise DatasetError(f"{labels_path}: label {int(y.max())} out of range 0-9")
    return x, y


def load_source(source: DataSource) -> tuple[Splits, DataSource]:
    """Read the four files of a located data set; the returned source has the sizes filled in."""
    paths = [path for _, path, _ in source.files]
    train, test = _read_split(paths[0], paths[1]), _read_split(paths[2], paths[3])
    if source.name == "mnist-5k":
        # The 5k files are sorted by class; a fixed shuffle makes "the last 10% for validation"
        # (Keras's validation_split) hold every class, as it does for the official files.
        train = shuffled(*train, seed=5000)
    return (train, test), dataclasses.replace(source, n_train=len(train[0]),
                                              n_test=len(test[0]))


def load_dataset(name: str, data_dir: PathLike = None,
                 download: bool = True) -> tuple[Splits, DataSource]:
    """Load "mnist", "mnist-5k" or "fashion-mnist"; return (splits, source).

    `str(source)` is a one-line description of which files were used, for logs.
    """
    return load_source(locate(name, data_dir, download))


def load_mnist(data_dir: PathLike = None, subset: str | None = None,
               download: bool = True) -> Splits:
    """MNIST as `(x_train, y_train), (x_test, y_test)`, uint8, images (N, 28, 28).

    subset=None (or "full"): the 60,000 training images, looked for in `data_dir`,
    `$GPUNET_DATA/mnist/` and the cache, and downloaded into the cache when missing (unless
    download=False). subset="5k": 5,000 real training digits (500 per class) with the official
    10,000 test images; these ship inside gpunet, so they never need a download. The 5k files
    are sorted by class; they are returned in a fixed shuffled order.
    Raises `DatasetUnavailableError` (listing the files to fetch and where to put them) when
    the data cannot be had, and `DatasetError` for a corrupt file.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset: expected one of {SUBSETS}, got {subset!r}")
    return load_dataset("mnist-5k" if subset == "5k" else "mnist", data_dir, download)[0]


def load_fashion_mnist(data_dir: PathLike = None, download: bool = True) -> Splits:
    """Fashion-MNIST (60,000 training / 10,000 test images, 10 classes), as `load_mnist`;
    looked for in `data_dir`, `$GPUNET_DATA/fashion-mnist/`, the cache, then downloaded."""
    return load_dataset("fashion-mnist", data_dir, download)[0]


def load_mnist_default(data_dir: PathLike = None,
                       download: bool = True) -> tuple[Splits, DataSource]:
    """The best MNIST to be had: the full set if it is on disk or can be downloaded, else the
    bundled 5k sample. Returns (splits, source); print `source` to say which data was used.

    On fallback `source.note` holds the full explanation (which files to put where); a corrupt
    file is not silently skipped: its `DatasetError` is raised.
    """
    try:
        return load_dataset("mnist", data_dir, download)
    except DatasetUnavailableError as exc:
        splits, source = load_dataset("mnist-5k", data_dir, download)
        return splits, dataclasses.replace(source, note=str(exc))
