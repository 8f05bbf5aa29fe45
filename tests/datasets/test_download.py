"""Downloads from a local HTTP server on 127.0.0.1: success, checksum mismatch, a connection
that breaks mid-body, a short Content-Length, a timeout, and nothing listening at all."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet.datasets import DatasetUnavailableError, download, registry
from tests.datasets.synth import (
    TEST_FILES,
    TRAIN_FILES,
    Route,
    dead_url,
    fake_files,
    fake_set,
    sha256,
)

pytestmark = pytest.mark.usefixtures("no_data_env")


@pytest.fixture
def fashion(server, monkeypatch):
    """A tiny fake Fashion-MNIST on the local server, its sums in the checksum table."""
    arrays = fake_set()
    files = fake_files(arrays)
    for name, body in files.items():
        server.routes[name] = Route(body)
        monkeypatch.setitem(registry.SHA256, f"fashion-mnist/{name}", sha256(body))
    monkeypatch.setenv("GPUNET_FASHION_MNIST_MIRROR", server.url)
    return arrays


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_lands_in_cache_verified(fashion, server, cache):
    (x_train, y_train), (x_test, y_test) = gn.datasets.load_fashion_mnist()
    np.testing.assert_array_equal(x_train, fashion[TRAIN_FILES[0]])
    np.testing.assert_array_equal(y_test, fashion[TEST_FILES[1]])
    assert leftovers(cache / "fashion-mnist") == sorted(TRAIN_FILES + TEST_FILES)
    for name in TRAIN_FILES + TEST_FILES:
        assert download.sha256_file(cache / "fashion-mnist" / name) == sha256(
            server.routes[name].body)
    # a second load reads the cache and never asks the server again
    server.requests.clear()
    _, source = gn.datasets.load_dataset("fashion-mnist")
    assert server.requests == []
    assert {origin for _, _, origin in source.files} == {"cache"}
    assert str(cache / "fashion-mnist") in str(source)


def test_mnist_downloads_only_the_training_files(server, cache, monkeypatch):
    files = fake_files(fake_set(n_train=20))
    for name in TRAIN_FILES:
        server.routes[name] = Route(files[name])
        monkeypatch.setitem(registry.SHA256, f"mnist/{name}", sha256(files[name]))
    monkeypatch.delenv("GPUNET_MNIST_MIRROR")
    monkeypatch.setitem(registry.MIRRORS, "mnist", [server.url.rstrip("/")])  # no slash: fine
    splits, source = gn.datasets.load_mnist_default()
    (x_train, _), (x_test, _) = splits
    assert x_train.shape == (20, 28, 28) and x_test.shape == (10000, 28, 28)
    assert [origin for _, _, origin in source.files] == ["downloaded"] * 2 + ["bundled"] * 2
    assert source.note == "" and sorted(server.requests) == sorted(f"/{n}" for n in TRAIN_FILES)


def test_second_mirror_used_when_first_fails(fashion, server, cache, monkeypatch):
    monkeypatch.setenv("GPUNET_FASHION_MNIST_MIRROR", f"{dead_url()}, {server.url}")
    (x_train, _), _ = gn.datasets.load_fashion_mnist()
    assert len(x_train) == 12


@pytest.mark.parametrize("mode, fragment", [
    ("bad-sum", "SHA-256 mismatch"),
    ("cut", "connection broke after"),
    ("short", "SHA-256 mismatch"),
    ("404", "HTTP 404"),
])
def test_failed_download_leaves_nothing(fashion, server, cache, mode, fragment):
    name = TRAIN_FILES[0]
    if mode == "bad-sum":
        server.routes[name] = Route(fake_files(fake_set(seed=1))[name])  # another valid file
    else:
        server.routes[name].mode = mode
    with pytest.raises(DatasetUnavailableError) as info:
        gn.datasets.load_fashion_mnist()
    message = str(info.value)
    assert fragment in message, message
    assert f"{server.url}{name}" in message
    assert f"Put these files (gzipped or not) into {cache / 'fashion-mnist'}/" in message
    assert leftovers(cache / "fashion-mnist") == []  # not even a temporary file


def test_timeout(fashion, server, cache, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT", 0.3)
    server.routes[TRAIN_FILES[0]].mode = "slow"
    with pytest.raises(DatasetUnavailableError, match="timed out after 0.3 s"):
        gn.datasets.load_fashion_mnist()
    assert leftovers(cache / "fashion-mnist") == []


def test_offline_error_says_what_to_put_where(cache):
    with pytest.raises(DatasetUnavailableError) as info:
        gn.datasets.load_fashion_mnist()
    message = str(info.value)
    folder = cache / "fashion-mnist"
    assert "cannot connect" in message
    assert f"into {folder}/" in message
    for name in TRAIN_FILES + TEST_FILES:
        assert f"\n  {name}  (from http://127.0.0.1:" in message
    assert "or into $GPUNET_DATA/fashion-mnist/, or into a folder passed as data_dir=" in message
    assert leftovers(folder) == []


def test_download_false_never_connects(fashion, server):
    with pytest.raises(DatasetUnavailableError, match=r"nothing was downloaded \(download=False\)"):
        gn.datasets.load_fashion_mnist(download=False)
    assert server.requests == []


def test_unwritable_cache_is_a_clear_error(fashion, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(DatasetUnavailableError, match="cannot create the cache folder"):
        gn.datasets.load_fashion_mnist()


def test_cache_root_follows_xdg_and_home(tmp_path, monkeypatch):
    assert download.cache_root() == tmp_path / "xdg-cache" / "gpunet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert download.cache_root() == tmp_path / "home" / ".cache" / "gpunet"


def test_downloads_respect_the_umask(fashion, cache):
    import os

    old = os.umask(0o022)
    try:
        gn.datasets.load_fashion_mnist()
    finally:
        os.umask(old)
    for name in TRAIN_FILES + TEST_FILES:  # was 0600, the temporary file's mode
        assert oct((cache / "fashion-mnist" / name).stat().st_mode & 0o777) == oct(0o644)
