"""Reader for the IDX format of MNIST-style data sets (gzip-compressed or raw).

An IDX file is a big-endian header (two zero bytes, a data-type byte, the number of dimensions,
then one uint32 per dimension) followed by the payload. We accept uint8 data (type 0x08) in the
two shapes these data sets use: images (magic 0x00000803, N x rows x cols) and labels
(magic 0x00000801, N).

A file is judged by what its header declares before anything that size is allocated: a raw
file must be exactly header + declared bytes long, a gzip file must be able to expand to the
declared size at all; gzip data is decompressed as a stream that stops one byte past the
declared length, so trailing garbage that would inflate to gigabytes costs one byte.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gpunet.datasets.errors import DatasetError
from gpunet.serialization import DEFLATE_MAX_RATIO

GZIP_MAGIC = b"\x1f\x8b"
UINT8 = 0x08
KINDS = {3: "images (magic 0x00000803)", 1: "labels (magic 0x00000801)"}
CHUNK = 1 << 20


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read a uint8 IDX file (images or labels) into a writable NumPy array.

    `ndim` (3 for images, 1 for labels) makes a file of the other kind an error. Any problem
    with the file (bad gzip, wrong magic, short payload, trailing bytes) raises one
    `DatasetError` naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, whatever the stream on top)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    with f:
        size = os.fstat(f.fileno()).st_size
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
        try:
            return _parse(path, stream, size, compressed, ndim)
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise DatasetError(f"{path}: cannot read it ({exc})") from exc
            raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc}); "
                               "delete the file and fetch it again") from exc


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n and (chunk := stream.read(n - len(out))):
        out += chunk
    return out


def _header(path: Path, stream: BinaryIO, ndim: int | None) -> tuple[int, ...]:
    """The declared shape, after checking magic, data type, kind and header length."""
    data = _read_upto(stream, 4)
    if len(data) < 4:
        raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX header")
    magic = struct.unpack(">I", data)[0]
    zero, dtype, dims = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or dims not in KINDS:
        raise DatasetError(f"{path}: not an IDX file of images or labels (magic 0x{magic:08x}, "
                           f"expected 0x00000803 or 0x00000801)")
    if dtype != UINT8:
        raise DatasetError(f"{path}: IDX data type 0x{dtype:02x} is not supported "
                           "(expected 0x08, unsigned bytes)")
    if ndim is not None and dims != ndim:
        raise DatasetError(f"{path}: expected an IDX file of {KINDS[ndim]}, "
                           f"found {KINDS[dims]}")
    rest = _read_upto(stream, 4 * dims)
    if len(rest) < 4 * dims:
        raise DatasetError(f"{path}: truncated IDX header ({4 + len(rest)} of {4 + 4 * dims} "
                           "bytes)")
    return struct.unpack(f">{dims}I", rest)


def _parse(path: Path, stream: BinaryIO, size: int, compressed: bool,
           ndim: int | None) -> np.ndarray:
    shape = _header(path, stream, ndim)
    header = 4 + 4 * len(shape)
    expected = int(np.prod(shape, dtype=np.int64))
    dims_text = " x ".join(str(d) for d in shape)
    promise = f"the header promises {dims_text} = {expected} bytes of data"
    if not compressed and size - header != expected:  # judged before reading anything
        actual = size - header
        if actual < expected:
            raise DatasetError(f"{path}: truncated: {promise} but only {actual} are present")
        raise DatasetError(f"{path}: {actual - expected} unexpected trailing bytes after the "
                           f"{dims_text} = {expected} bytes of data the header promises")
    if compressed and expected > DEFLATE_MAX_RATIO * size:
        raise DatasetError(f"{path}: {promise}, more than a {size}-byte gzip file can hold "
                           "(forged or truncated header)")
    out = np.empty(expected, dtype=np.uint8)
    view, got = memoryview(out), 0
    while got < expected:
        n = stream.readinto(view[got:got + CHUNK])
        if not n:
            raise DatasetError(f"{path}: truncated: {promise} but only {got} are present")
        got += n
    if stream.read(1):  # one byte past the declared length is enough to know
        raise DatasetError(f"{path}: unexpected trailing bytes after the {dims_text} = "
                           f"{expected} bytes of data the header promises")
    return out.reshape(shape)
