"""The IDX reader: good files (gzipped and raw) load; every kind of damage gives one clear
DatasetError naming the file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from gpunet.datasets import DatasetError, read_idx
from tests.datasets.synth import gz, idx_bytes
from tests.helpers import peak_bytes

IMAGES = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
LABELS = np.array([7, 2, 1], dtype=np.uint8)


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_good_files_load(tmp_path, compress):
    pack = gz if compress else (lambda b: b)
    images = read_idx(write(tmp_path, "img", pack(idx_bytes(IMAGES))))
    labels = read_idx(write(tmp_path, "lbl", pack(idx_bytes(LABELS))), ndim=1)
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)
    images[0, 0, 0] = 1  # the result is an ordinary writable array
    assert read_idx(tmp_path / "img", ndim=3).shape == (3, 28, 28)


def expect_error(path, *fragments: str, ndim: int | None = None) -> None:
    with pytest.raises(DatasetError) as info:
        read_idx(path, ndim=ndim)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_truncated_payload(tmp_path, compress):
    data = idx_bytes(IMAGES)[:-100]
    path = write(tmp_path, "short.idx", gz(data) if compress else data)
    expect_error(path, "truncated", "3 x 28 x 28 = 2352", "2252")


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_trailing_bytes(tmp_path, compress):
    data = idx_bytes(LABELS) + b"\x00" * 5
    path = write(tmp_path, "long.idx", gz(data) if compress else data)
    expect_error(path, "unexpected trailing bytes", *([] if compress else ["5 unexpected"]))


def test_truncated_gzip(tmp_path):
    path = write(tmp_path, "cut.gz", gz(idx_bytes(IMAGES))[:-30])
    expect_error(path, "corrupt or truncated gzip")


def test_corrupt_gzip(tmp_path):
    data = bytearray(gz(idx_bytes(IMAGES)))
    data[len(data) // 2] ^= 0xFF
    data[-8] ^= 0xFF  # CRC
    expect_error(write(tmp_path, "bad.gz", bytes(data)), "corrupt or truncated gzip")


@pytest.mark.parametrize("data, fragment", [
    (b"<html><body>Not Found</body></html>", "magic 0x3c68746d"),
    (idx_bytes(LABELS, magic=0x00000802), "magic 0x00000802"),
    (idx_bytes(LABELS, magic=0x01000801), "magic 0x01000801"),
    (idx_bytes(IMAGES, magic=0x00000D03), "data type 0x0d"),
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x03", "truncated IDX header"),
])
def test_wrong_magic_and_headers(tmp_path, data, fragment):
    expect_error(write(tmp_path, "f.idx", data), fragment)


def test_wrong_kind(tmp_path):
    path = write(tmp_path, "labels.gz", gz(idx_bytes(LABELS)))
    expect_error(path, "expected an IDX file of images", "found labels", ndim=3)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gz"):
        read_idx(tmp_path / "nope.gz")


def test_gzip_trailing_garbage_is_not_inflated(tmp_path):
    """A small gzip file whose payload is followed by 256 MB of compressed zeros: the reader
    stops one byte past the declared length (it used to inflate everything first)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    parts = [packer.compress(idx_bytes(LABELS))]
    zeros = bytes(1 << 20)
    parts += [packer.compress(zeros) for _ in range(256)]
    parts.append(packer.flush())
    path = write(tmp_path, "bomb.gz", b"".join(parts))
    assert path.stat().st_size < 400_000

    def read():
        expect_error(path, "unexpected trailing bytes")

    assert peak_bytes(read) < 4 << 20


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_a_forged_header_is_judged_before_allocating(tmp_path, compress):
    """A header declaring 60000 x 28000 x 28 images (47 GB) in a tiny file."""
    header = struct.pack(">4I", 0x0803, 60000, 28000, 28)
    data = header + bytes(1000)
    path = write(tmp_path, "forged", gz(data) if compress else data)

    def read():
        expect_error(path, "can hold" if compress else "truncated")

    assert peak_bytes(read) < 1 << 20


def test_a_folder_is_one_clear_error(tmp_path):
    expect_error(tmp_path, "cannot read it")
