"""Reader for the IDX format of MNIST-style data sets (gzip-compressed or raw).

An IDX file is a big-endian header (two zero bytes, a data-type byte, the number of dimensions,
then one uint32 per dimension) followed by the payload. We accept uint8 data (type 0x08) in the
two shapes these data sets use: images (magic 0x00000803, N x rows x cols) and labels
(magic 0x00000801, N).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from gpunet.datasets.errors import DatasetError

GZIP_MAGIC = b"\x1f\x8b"
UINT8 = 0x08
KINDS = {3: "images (magic 0x00000803)", 1: "labels (magic 0x00000801)"}


def _payload(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc}); "
                           "delete the file and fetch it again") from exc


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read a uint8 IDX file (images or labels) into a writable NumPy array.

    `ndim` (3 for images, 1 for labels) makes a file of the other kind an error. Any problem
    with the file (bad gzip, wrong magic, short payload, trailing bytes) raises one
    `DatasetError` naming the file and what is wrong with it.
    """
    path = Path(path)
    data = _payload(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX header")
    magic = struct.unpack(">I", data[:4])[0]
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
    header = 4 + 4 * dims
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header
    dims_text = " x ".join(str(d) for d in shape)
    if actual < expected:
        raise DatasetError(f"{path}: truncated: the header promises {dims_text} = {expected} "
                           f"bytes of data but only {actual} are present")
    if actual > expected:
        raise DatasetError(f"{path}: {actual - expected} unexpected trailing bytes after the "
                           f"{dims_text} = {expected} bytes of data the header promises")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
