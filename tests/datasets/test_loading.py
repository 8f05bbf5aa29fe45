"""Loading from a data folder (gzipped or raw files, lookup order, damaged files) and
`to_float`."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.datasets import DatasetError, DatasetUnavailableError, to_float
from tests.datasets.synth import TEST_FILES, TRAIN_FILES, fake_files, fake_set, gz, idx_bytes

pytestmark = pytest.mark.usefixtures("no_data_env")


def write_set(folder, arrays, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in fake_files(arrays).items():
        if compress:
            (folder / name).write_bytes(data)
        else:
            (folder / name.removesuffix(".gz")).write_bytes(idx_bytes(arrays[name]))


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_data_dir_gzip_or_raw(tmp_path, compress):
    arrays = fake_set()
    write_set(tmp_path / "d", arrays, compress)
    (x_train, y_train), (x_test, y_test) = gn.datasets.load_mnist(data_dir=tmp_path / "d")
    np.testing.assert_array_equal(x_train, arrays[TRAIN_FILES[0]])
    np.testing.assert_array_equal(y_train, arrays[TRAIN_FILES[1]])
    np.testing.assert_array_equal(x_test, arrays[TEST_FILES[0]])
    np.testing.assert_array_equal(y_test, arrays[TEST_FILES[1]])


def test_lookup_order_data_dir_then_env_then_cache(tmp_path, cache, monkeypatch):
    for i, folder in enumerate([tmp_path / "d", tmp_path / "env" / "mnist", cache / "mnist"]):
        write_set(folder, fake_set(n_train=10 + i))
    monkeypatch.setenv("GPUNET_DATA", str(tmp_path / "env"))
    assert len(gn.datasets.load_mnist(data_dir=tmp_path / "d")[0][0]) == 10
    assert len(gn.datasets.load_mnist(data_dir=tmp_path / "env")[0][0]) == 11  # <dir>/mnist
    assert len(gn.datasets.load_mnist()[0][0]) == 11
    monkeypatch.delenv("GPUNET_DATA")
    _, source = gn.datasets.load_dataset("mnist")
    assert source.n_train == 12 and {o for _, _, o in source.files} == {"cache"}


def test_corrupt_local_file_is_an_error_not_a_fallback(tmp_path):
    arrays = fake_set()
    write_set(tmp_path, arrays)
    (tmp_path / TRAIN_FILES[0]).write_bytes(gz(idx_bytes(arrays[TRAIN_FILES[0]])[:-10]))
    with pytest.raises(DatasetError, match="truncated") as info:
        gn.datasets.load_mnist_default(data_dir=tmp_path)
    assert not isinstance(info.value, DatasetUnavailableError)
    assert str(tmp_path / TRAIN_FILES[0]) in str(info.value)


def test_images_and_labels_must_agree(tmp_path):
    arrays = fake_set()
    arrays[TRAIN_FILES[1]] = arrays[TRAIN_FILES[1]][:-1]
    write_set(tmp_path, arrays)
    with pytest.raises(DatasetError, match="holds 12 images but .* holds 11 labels"):
        gn.datasets.load_mnist(data_dir=tmp_path)
    arrays = fake_set()
    arrays[TEST_FILES[1]][0] = 10
    write_set(tmp_path, arrays)
    with pytest.raises(DatasetError, match="label 10 out of range"):
        gn.datasets.load_mnist(data_dir=tmp_path)
    arrays[TEST_FILES[0]] = np.zeros((6, 32, 32), np.uint8)
    arrays[TEST_FILES[1]][0] = 1
    write_set(tmp_path, arrays)
    with pytest.raises(DatasetError, match="32x32, expected 28x28"):
        gn.datasets.load_mnist(data_dir=tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="subset"):
        gn.datasets.load_mnist(subset="10k")
    with pytest.raises(ValueError, match="unknown data set"):
        gn.datasets.load_dataset("cifar10")


def test_to_float_layouts(xp):
    x = xp.asarray(np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256, dtype=xp.uint8)
    flat, image = to_float(x), to_float(x, layout="image")
    assert type(flat) is type(x) and flat.dtype == np.float32 and image.dtype == np.float32
    assert flat.shape == (2, 784) and image.shape == (2, 1, 28, 28)
    assert float(flat.min()) == 0.0 and float(flat.max()) == 1.0
    np.testing.assert_allclose(gn.backend.to_numpy(flat)[0, 255], 1.0)
    np.testing.assert_allclose(gn.backend.to_numpy(flat)[0, 51], 0.2, rtol=1e-6)
    assert to_float(x.reshape(2, 784), layout="image").shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(gn.backend.to_numpy(image).reshape(2, 784),
                                  gn.backend.to_numpy(flat))


def test_to_float_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        to_float(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="layout"):
        to_float(np.zeros((2, 28, 28), np.uint8), layout="nchw")
    with pytest.raises(ValueError, match="shape"):
        to_float(np.zeros((2, 10), np.uint8))


def test_a_data_dir_that_does_not_exist_is_an_error_not_a_fallback(tmp_path):
    for load in (gn.datasets.load_mnist, gn.datasets.load_mnist_default):
        with pytest.raises(gn.datasets.DatasetError, match="no_such: no such folder"):
            load(data_dir=tmp_path / "no_such")


def test_shuffled_keeps_pairs_together_and_repeats_with_the_seed():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    sx, sy = gn.datasets.shuffled(x, y, seed=3)
    np.testing.assert_array_equal(sx[:, 0] // 2, sy)  # each image still has its label
    assert sorted(sy) == list(range(10)) and list(sy) != list(range(10))
    np.testing.assert_array_equal(gn.datasets.shuffled(x, y, seed=3)[1], sy)
    assert list(gn.datasets.shuffled(x, y, seed=4)[1]) != list(sy)
