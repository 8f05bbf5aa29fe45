"""Data sets: MNIST (full, or a 5k sample bundled in the package) and Fashion-MNIST.

    (x_train, y_train), (x_test, y_test) = gn.datasets.load_mnist()          # 60k, downloads
    (x_train, y_train), (x_test, y_test) = gn.datasets.load_mnist(subset="5k")  # no download
    splits, source = gn.datasets.load_mnist_default()  # full if possible, else the 5k sample
    print(source)                                      # which files were used
    x = gn.datasets.to_float(x_train, layout="flat")   # float32 (N, 784) in [0, 1]

Files are looked for in `data_dir`, `$GPUNET_DATA/<name>/`, then `~/.cache/gpunet/<name>/`;
missing ones are downloaded into the cache and checked against published SHA-256 sums.
"""

from gpunet.datasets.download import cache_root
from gpunet.datasets.errors import DatasetError, DatasetUnavailableError
from gpunet.datasets.idx import read_idx
from gpunet.datasets.mnist import (
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_mnist_default,
    load_source,
)
from gpunet.datasets.registry import DATASETS, MIRRORS, SHA256
from gpunet.datasets.sources import DataSource, locate
from gpunet.datasets.transforms import shuffled, to_float

__all__ = [
    "DATASETS",
    "MIRRORS",
    "SHA256",
    "DataSource",
    "DatasetError",
    "DatasetUnavailableError",
    "cache_root",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_default",
    "load_source",
    "locate",
    "read_idx",
    "shuffled",
    "to_float",
]
