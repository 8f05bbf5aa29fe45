"""Safe, atomic `.npz` files.

Writing: to a temporary file beside the destination, flushed, fsynced and renamed into place,
so a crash, Ctrl-C or full disk leaves the old file or the new one, never half of one; the new
file gets the mode an ordinary `open(path, "w")` would give it (the old file's mode, else
0666 minus the umask). A failure raises `WriteError` naming the destination, not the temp file.

Reading (`NpzReader`): nothing is unpickled (object arrays are refused), only the entries a
loader asks for are read, and each entry is judged by what it declares before anything that
size is allocated: its `.npy` header must agree with the zip directory, and the zip directory
with the bytes actually on disk. Every problem is one `FileFormatError` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from gpunet import backend
from gpunet.checks import is_int

FORMAT = "gpunet"
VERSION = 1
META = "__meta__"
MAX_META_BYTES = 64 << 20  # the JSON meta (architecture, history) of any sane file is far less
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand one byte into more than ~1032
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
_ENTRY_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError,
                 NotImplementedError, RuntimeError)
_umask_lock = threading.Lock()


class FileFormatError(ValueError):
    """A model or checkpoint file is damaged, hostile or not what it claims to be."""


class WriteError(OSError):
    """A file could not be written (read-only folder, full disk, a folder in the way, ...).

    `path` is the destination the caller asked for (never the hidden temporary file)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot write {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


# -- writing ----------------------------------------------------------------------------------
def _umask() -> int:
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode(path: Path) -> int:
    """The mode `open(path, "w")` would leave: the existing file's, else 0666 minus umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _regular_target(path: Path) -> None:
    """Raise `WriteError` when `path` is a folder or exists as anything but a regular file."""
    if path.is_dir():
        raise WriteError(path, f"it is a folder; name a file in it, e.g. {path / 'model.npz'}")
    if path.exists() and not path.is_file():
        raise WriteError(path, "it exists and is not a regular file")


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new hidden temporary file (fd, name) in `path`'s folder, made if missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from exc


def check_writable(path: str | os.PathLike) -> Path:
    """Raise `WriteError` unless `path` can be atomically replaced: not a folder or a device,
    its folder exists or can be made, and a file can be created there (by trying it)."""
    path = Path(path)
    _regular_target(path)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    os.unlink(tmp)
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place.

    The file is flushed and fsynced first and gets `new_file_mode(path)`; on any failure the
    temporary file is removed and an OSError becomes a `WriteError` naming `path`."""
    path = Path(path)
    _regular_target(path)
    mode = new_file_mode(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(path, exc.strerror or str(exc)) from exc
        raise
    return path


def write_npz(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Atomically write `arrays` (host or device) and a JSON `meta` dict to `path`."""
    payload = {k: backend.to_numpy(v) for k, v in arrays.items()}
    payload[META] = np.array(json.dumps({"format": FORMAT, "version": VERSION, **meta}))
    return write_atomic(path, lambda f: np.savez(f, **payload))


# -- reading ----------------------------------------------------------------------------------
def _what_it_is(path: Path) -> str:
    """Why a file that is not a zip archive cannot be a gpunet file, in words."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "it is empty (0 bytes)"
    if head.startswith(NPY_MAGIC):
        return "it is a single .npy array, not a gpunet .npz archive"
    if head.startswith(ZIP_MAGIC):
        return "the zip archive is truncated or damaged"
    return "it is not a zip archive (.npz)"


class NpzReader:
    """Read a gpunet `.npz` entry by entry; `meta` is its JSON header (checked on open).

    Use as a context manager. `names` lists the entries (without ".npy"); `header(name)` gives
    an entry's declared (shape, dtype) reading a few hundred bytes; `read(name)` reads one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such model or checkpoint file: {self.path}")
        if not self.path.is_file():
            raise FileFormatError(f"{self.path}: is a folder, not a gpunet .npz file")
        try:
            self.size = self.path.stat().st_size
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise FileFormatError(f"{self.path}: not a gpunet .npz file: "
                                  f"{_what_it_is(self.path)}") from exc
        try:
            self._infos = {i.filename.removesuffix(".npy"): i for i in self._zip.infolist()}
            self.meta = self._read_meta()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        return [n for n in self._infos if n != META]

    def _fail(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.path}: {message}")

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self._infos.get(name)
        if info is None:
            raise self._fail(f"has no entry {name!r}")
        end = info.header_offset + info.compress_size
        if info.compress_type == zipfile.ZIP_STORED:
            possible = info.compress_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            possible = info.compress_size * DEFLATE_MAX_RATIO + 1024
        else:
            raise self._fail(f"entry {name!r} uses zip compression method "
                             f"{info.compress_type}; gpunet files are stored or deflated")
        if end > self.size or info.file_size > possible:
            raise self._fail(f"entry {name!r} declares {info.file_size:,} bytes, more than the "
                             f"{info.compress_size:,} bytes stored for it can hold "
                             "(truncated or forged file)")
        return info

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The entry's declared shape and dtype, checked against the zip's declared size."""
        info = self._info(name)
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(f)
                offset = f.tell()
        except _ENTRY_ERRORS as exc:
            raise self._fail(f"entry {name!r} is not a readable .npy array ({exc})") from exc
        if dtype.hasobject:
            raise self._fail(f"entry {name!r} holds Python objects (pickled data); refused")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise self._fail(f"entry {name!r} declares shape {tuple(shape)} of {dtype} "
                             f"({nbytes:,} bytes) but the archive holds "
                             f"{info.file_size - offset:,} bytes for it")
        return tuple(shape), dtype

    def read(self, name: str, kind: str = "fiu") -> np.ndarray:
        """Read one entry; its dtype kind must be one of `kind` (default: numbers)."""
        shape, dtype = self.header(name)
        if dtype.kind not in kind:
            raise self._fail(f"entry {name!r} has dtype {dtype}, expected "
                             + ("numbers" if kind == "fiu" else f"kind {kind!r}"))
        try:
            with self._zip.open(self._infos[name]) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except _ENTRY_ERRORS as exc:
            raise self._fail(f"entry {name!r} is damaged ({type(exc).__name__}: "
                             f"{exc})") from exc

    def _read_meta(self) -> dict[str, Any]:
        if META not in self._infos:
            raise self._fail("not a gpunet file (no __meta__ entry)")
        shape, dtype = self.header(META)
        if shape != () or dtype.kind != "U" or dtype.itemsize > MAX_META_BYTES:
            raise self._fail(f"__meta__ must be one JSON string of at most {MAX_META_BYTES:,} "
                             f"bytes, found shape {shape} of {dtype}")
        text = str(self.read(META, kind="U"))
        try:
            meta = json.loads(text)
        except (ValueError, RecursionError) as exc:  # bad JSON, 5000-digit ints, deep nesting
            raise self._fail(f"__meta__ is not valid JSON ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from exc
        if not isinstance(meta, dict):
            raise self._fail(f"__meta__ must be a JSON object, got {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise self._fail(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        version = meta.get("version")
        if not is_int(version) or version < 1:
            raise self._fail(f"version must be a positive integer, got {version!r}")
        if version > VERSION:
            raise self._fail(f"written by a newer gpunet (file version {version}, this gpunet "
                             f"reads up to {VERSION})")
        return meta

    def read_float(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A floating-point entry of the given shape with only finite values."""
        got, dtype = self.header(name)
        if shape is not None and got != tuple(shape):
            raise self._fail(f"entry {name!r} has shape {got}, expected {tuple(shape)}")
        if dtype.kind != "f":
            raise self._fail(f"entry {name!r} has dtype {dtype}, expected floating point")
        array = self.read(name, kind="f")
        check_finite(array, f"{self.path}: entry {name!r}")
        return array


def check_finite(array: np.ndarray, what: str) -> None:
    """Raise `FileFormatError` naming `what` when `array` holds NaN or inf."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise FileFormatError(f"{what} holds {int(bad.sum()):,} non-finite values (NaN or inf; "
                              f"the first at flat index {first}); refused")


def open_npz(path: str | os.PathLike) -> NpzReader:
    """Open a gpunet `.npz` for reading entry by entry (see `NpzReader`)."""
    return NpzReader(path)


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read every entry of a file written by `write_npz`; return (arrays, meta)."""
    with NpzReader(path) as f:
        return {name: f.read(name) for name in f.names}, f.meta
