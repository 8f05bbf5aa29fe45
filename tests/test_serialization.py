"""Atomic writes that respect the umask and name the destination; reading that judges every
entry by what it declares before allocating it, and reads only the entries asked for."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import zipfile

import numpy as np
import pytest

from gpunet import serialization as ser
from gpunet.serialization import FileFormatError, NpzReader, WriteError
from tests.helpers import peak_bytes


def npz_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def meta_entry(meta: dict | str) -> bytes:
    text = meta if isinstance(meta, str) else json.dumps({"format": "gpunet", "version": 1,
                                                          **meta})
    return npy_bytes(np.array(text))


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A .npy header declaring `shape` with no data after it (a forged entry)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_new_files_follow_the_umask_and_existing_ones_keep_their_mode(tmp_path, umask_027):
    path = ser.write_npz(tmp_path / "m.npz", {"a": np.ones(3)}, {})
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)  # was 0600 (the temp file's mode)
    path.chmod(0o604)
    ser.write_npz(path, {"a": np.zeros(3)}, {})
    assert oct(path.stat().st_mode & 0o777) == oct(0o604)


def test_failed_write_keeps_the_old_file_and_names_the_destination(tmp_path):
    path = ser.write_npz(tmp_path / "m.npz", {"a": np.ones(3)}, {})
    before = path.read_bytes()

    def disk_full(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError) as info:
        ser.write_atomic(path, disk_full)
    assert str(info.value) == f"cannot write {path}: No space left on device"
    assert info.value.path == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temp file left


@pytest.mark.parametrize("target", ["folder", "device"])
def test_writes_refuse_folders_and_devices(tmp_path, target):
    path = tmp_path if target == "folder" else "/dev/null"
    with pytest.raises(WriteError, match="folder" if target == "folder" else "not a regular"):
        ser.write_npz(path, {"a": np.ones(1)}, {})
    with pytest.raises(WriteError):
        ser.check_writable(path)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_check_writable_names_a_missing_parent_it_cannot_create(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match=str(blocker / "sub" / "m.npz")):
        ser.check_writable(blocker / "sub" / "m.npz")


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty (0 bytes)"),
    (b"hello, world\n", "not a zip archive"),
    (npy_bytes(np.zeros(3)), "single .npy array"),
    (npz_bytes({"__meta__.npy": meta_entry({})})[:40], "truncated or damaged"),
])
def test_not_an_npz_is_one_clear_error(tmp_path, data, fragment):
    path = tmp_path / "f.npz"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=re.escape(fragment)) as info:
        NpzReader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("entries, fragment", [
    ({"a.npy": npy_bytes(np.ones(2))}, "no __meta__"),
    ({"__meta__.npy": npy_bytes(np.array("{not json"))}, "not valid JSON"),
    ({"__meta__.npy": npy_bytes(np.array("[1, 2]"))}, "must be a JSON object"),
    ({"__meta__.npy": meta_entry('{"format": "other", "version": 1}')}, "format 'other'"),
    ({"__meta__.npy": meta_entry('{"format": "gpunet", "version": "1"}')}, "version must be"),
    ({"__meta__.npy": meta_entry('{"format": "gpunet", "version": 99}')}, "newer gpunet"),
    ({"__meta__.npy": npy_bytes(np.zeros(3))}, "one JSON string"),
    ({"__meta__.npy": b"garbage"}, "not a readable .npy"),
])
def test_bad_meta_is_one_clear_error(tmp_path, entries, fragment):
    path = tmp_path / "f.npz"
    path.write_bytes(npz_bytes(entries))
    with pytest.raises(FileFormatError, match=fragment):
        NpzReader(path)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "f.npz"
    pickled = io.BytesIO()
    np.lib.format.write_array(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path.write_bytes(npz_bytes({"__meta__.npy": meta_entry({}), "w.npy": pickled.getvalue()}))
    with NpzReader(path) as f, pytest.raises(FileFormatError, match="pickled data"):
        f.read("w")


def test_declared_shape_is_judged_before_allocating(tmp_path):
    """A 1 KB entry declaring a 400 MB array is refused without allocating it."""
    path = tmp_path / "f.npz"
    forged = npy_header_only((10000, 10000)) + b"\0" * 512
    path.write_bytes(npz_bytes({"__meta__.npy": meta_entry({}), "W.npy": forged}))
    assert path.stat().st_size < 2048

    def read():
        with NpzReader(path) as f, pytest.raises(FileFormatError, match="declares shape"):
            f.read("W")

    peak = peak_bytes(read)
    assert peak < 1 << 20, peak


def test_zip_directory_claiming_more_than_the_file_holds_is_refused(tmp_path):
    """The zip's own declared size of an entry must be possible for the bytes stored."""
    data = bytearray(npz_bytes({"__meta__.npy": meta_entry({}),
                                "W.npy": npy_bytes(np.ones(4, np.float32))}))
    central = data.rfind(b"PK\x01\x02")  # the last central-directory record: W.npy
    struct.pack_into("<I", data, central + 24, 400_000_000)  # its uncompressed size
    path = tmp_path / "f.npz"
    path.write_bytes(bytes(data))
    with NpzReader(path) as f, pytest.raises(FileFormatError, match="more than the"):
        f.header("W")


def test_only_the_entries_asked_for_are_read(tmp_path, monkeypatch):
    path = tmp_path / "f.npz"
    path.write_bytes(npz_bytes({"__meta__.npy": meta_entry({}),
                                "a.npy": npy_bytes(np.ones(3)),
                                "junk.npy": npy_header_only((10000, 10000))}))
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: opened.append(getattr(name, "filename",
                                                                          name))
                        or real_open(self, name, *a, **k))
    with NpzReader(path) as f:
        np.testing.assert_array_equal(f.read("a"), np.ones(3))
    assert "junk.npy" not in opened and "a.npy" in opened


def test_non_finite_values_are_refused_naming_the_entry(tmp_path):
    path = ser.write_npz(tmp_path / "m.npz", {"w": np.array([1.0, np.nan, np.inf])}, {})
    with NpzReader(path) as f, pytest.raises(FileFormatError,
                                             match=r"entry 'w' holds 2 non-finite"):
        f.read_float("w")


def test_read_npz_round_trip(tmp_path):
    path = ser.write_npz(tmp_path / "m.npz", {"w": np.arange(6.0).reshape(2, 3)}, {"k": 1})
    arrays, meta = ser.read_npz(path)
    np.testing.assert_array_equal(arrays["w"], np.arange(6.0).reshape(2, 3))
    assert meta["k"] == 1 and meta["format"] == "gpunet"


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"format": "gpunet", "version": ' + "9" * 5000 + "}"])
def test_hostile_json_is_one_clear_error(tmp_path, text):
    """Deep nesting (RecursionError) and a 5000-digit integer (ValueError) in a small file."""
    path = tmp_path / "f.npz"
    path.write_bytes(npz_bytes({"__meta__.npy": npy_bytes(np.array(text))}, zipfile.ZIP_DEFLATED))
    assert path.stat().st_size < 10_000
    with pytest.raises(FileFormatError, match="not valid JSON"):
        NpzReader(path)


def test_round_trip_is_exact_and_leaves_no_temporary_file(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([np.nan])}
    path = ser.write_npz(tmp_path / "sub" / "f.npz", arrays, {"kind": "test", "n": 2})
    back, meta = ser.read_npz(path)
    np.testing.assert_array_equal(back["a"], arrays["a"])
    assert np.isnan(back["b"][0]) and meta["kind"] == "test" and meta["n"] == 2
    assert meta["format"] == ser.FORMAT and meta["version"] == ser.VERSION
    assert [p.name for p in path.parent.iterdir()] == ["f.npz"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = ser.write_npz(tmp_path / "f.npz", {"a": np.zeros(2)}, {})
    with pytest.raises(TypeError):
        ser.write_npz(path, {"a": np.zeros(2)}, {"bad": object()})
    np.testing.assert_array_equal(ser.read_npz(path)[0]["a"], np.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]
