"""The real files: the shared data sets beside the repository and the copy bundled in gpunet."""

from __future__ import annotations

import fnmatch
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunet as gn
from gpunet.datasets import DatasetUnavailableError, registry
from gpunet.datasets.sources import BUNDLED_DIR

REPO = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.name for p in (BUNDLED_DIR / "mnist").iterdir())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_mnist_5k(splits) -> None:
    (x_train, y_train), (x_test, y_test) = splits
    assert x_train.shape == (5000, 28, 28) and y_train.shape == (5000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [500] * 10)
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert x_train.max() == 255 and x_test.max() == 255


def test_shared_mnist_5k_and_checksums(shared_data, no_data_env):
    folder = shared_data / "mnist"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert sha(folder / name) == registry.SHA256[f"mnist/{name}"]
    splits, source = gn.datasets.load_dataset("mnist-5k", data_dir=folder)
    check_mnist_5k(splits)
    assert {origin for _, _, origin in source.files} == {"data_dir"}


def test_shared_fashion_mnist(shared_data, no_data_env):
    for path in (shared_data / "fashion-mnist").iterdir():
        assert sha(path) == registry.SHA256[f"fashion-mnist/{path.name}"]
    (x_train, y_train), (x_test, y_test) = gn.datasets.load_fashion_mnist(data_dir=shared_data)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)


def test_gpunet_data_env(shared_data, monkeypatch):
    monkeypatch.setenv("GPUNET_DATA", str(shared_data))
    splits, source = gn.datasets.load_dataset("mnist-5k")
    check_mnist_5k(splits)
    assert {origin for _, _, origin in source.files} == {"$GPUNET_DATA"}
    assert str(shared_data / "mnist") in source.describe()
    # the full set: the test files are there, only the two 60k training files are missing
    with pytest.raises(DatasetUnavailableError) as info:
        gn.datasets.load_mnist(download=False)
    message = str(info.value)
    assert "cannot find train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz;" in message
    assert "t10k" not in message.split("Searched")[0]


def test_bundled_files_match_published_sums():
    assert BUNDLED == ["README.md", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                       "train-5k-images-idx3-ubyte.gz", "train-5k-labels-idx1-ubyte.gz"]
    for name in BUNDLED[1:]:
        assert sha(BUNDLED_DIR / "mnist" / name) == registry.SHA256[f"mnist/{name}"]
    assert "CC BY-SA 3.0" in (BUNDLED_DIR / "mnist" / "README.md").read_text()


def test_bundled_5k_needs_no_env_and_no_download(no_data_env, cache):
    splits = gn.datasets.load_mnist(subset="5k")
    check_mnist_5k(splits)
    _, source = gn.datasets.load_dataset("mnist-5k")
    assert {origin for _, _, origin in source.files} == {"bundled"}
    assert source.describe().startswith("MNIST 5k sample: 5,000 training / 10,000 test images")
    assert not cache.exists()


def test_default_falls_back_to_bundled_5k_offline(no_data_env, cache):
    splits, source = gn.datasets.load_mnist_default()
    check_mnist_5k(splits)
    assert source.name == "mnist-5k" and "fallback" in str(source)
    assert "train-images-idx3-ubyte.gz" in source.note and "cannot connect" in source.note
    assert not any(p.is_file() for p in cache.rglob("*"))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_package_data_globs_cover_bundled_files():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["gpunet.datasets"]
    for name in BUNDLED:
        assert any(fnmatch.fnmatch(f"data/mnist/{name}", g) for g in globs), name


def test_bundled_5k_comes_shuffled_so_a_validation_tail_has_every_class():
    (_, y), _ = gn.datasets.load_mnist(subset="5k")
    assert sorted(set(y[-500:].tolist())) == list(range(10))
    (_, y2), _ = gn.datasets.load_mnist(subset="5k")
    assert (y == y2).all()  # a fixed order, the same on every load
