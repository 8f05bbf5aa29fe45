"""Models as safetensors files, read and written with NumPy alone (no pickle, nothing runs).

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N,
N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the
tensors' bytes. gpunet stores the weights under their `get_weights` names ("layer0.W") and the
architecture as JSON in the metadata, so `safetensors.numpy.load_file` and
`safetensors.torch.load_file` read the weights and `gpunet.load_model` the whole model.

Reading trusts nothing in the file: the header length is checked against the file's size before
anything is allocated, every tensor's offsets against the data that is really there, the
architecture against the layer registry, and each weight's presence, shape, dtype and finiteness
against what the architecture says, before a single layer is built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.architecture import check_entries, declared_weights
from gpunet.checks import is_int
from gpunet.serialization import FileFormatError, check_finite, write_atomic

FORMAT, VERSION = "gpunet", 1
MAX_HEADER = 16 << 20  # a model's header is a few kB; refuse absurd lengths before reading
DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
NAMES = {v.newbyteorder("="): k for k, v in DTYPES.items()}


def write(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Atomically write float arrays (host or device) and JSON-able `meta` values."""
    header: dict[str, Any] = {"__metadata__": {
        **{k: json.dumps(v) for k, v in meta.items()}, "format": FORMAT, "version": str(VERSION)}}
    blobs, offset = [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(backend.to_numpy(arrays[name]))
        if a.dtype.newbyteorder("=") not in NAMES:
            raise TypeError(f"safetensors: {name} has dtype {a.dtype}, expected float16/32/64")
        blob = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer's
    chunks = [len(text).to_bytes(8, "little"), text, *blobs]
    return write_atomic(path, lambda f: f.writelines(chunks))


def _fail(path: Path, why: str) -> FileFormatError:
    return FileFormatError(f"{path}: not a readable gpunet .safetensors file ({why})")


def _header(path: Path, f: Any, size: int) -> dict[str, Any]:
    """The JSON header, its length checked against MAX_HEADER and the file before reading."""
    head = f.read(8)
    if len(head) < 8:
        raise _fail(path, f"{size} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(head, "little")
    if n > min(MAX_HEADER, size - 8):
        raise _fail(path, f"header length {n} exceeds the file's remaining {size - 8} bytes "
                          f"or the limit {MAX_HEADER}")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise _fail(path, f"header is a JSON {type(header).__name__}, expected an object")
    return header


def _entries(path: Path, header: dict[str, Any], data_len: int) -> dict[str, tuple]:
    """name → (dtype, shape, begin, end), every field checked and the tensors tiling the data."""
    out = {}
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise _fail(path, f"tensor {name!r} is not {{dtype, shape, data_offsets}}")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise _fail(path, f"tensor {name!r} has dtype {dtype!r}, expected one of "
                              f"{sorted(DTYPES)}")
        if not (isinstance(shape, list) and all(_nat(d) for d in shape)
                and isinstance(offs, list) and len(offs) == 2 and all(_nat(o) for o in offs)):
            raise _fail(path, f"tensor {name!r}: bad shape {shape!r} or offsets {offs!r}")
        if offs[1] - offs[0] != int(np.prod(shape, dtype=object)) * DTYPES[dtype].itemsize:
            raise _fail(path, f"tensor {name!r}: offsets {offs} do not hold {dtype} {shape}")
        out[name] = (DTYPES[dtype], tuple(shape), offs[0], offs[1])
    end = 0
    for name, (_, _, begin, stop) in sorted(out.items(), key=lambda kv: kv[1][2:]):
        if begin != end:
            raise _fail(path, f"tensor {name!r} starts at {begin}, expected {end} "
                              f"(tensors must tile the data without gaps or overlaps)")
        end = stop
    if end != data_len:
        raise _fail(path, f"tensors end at byte {end} of {data_len} bytes of data")
    return out


def _nat(v: Any) -> bool:
    return is_int(v) and v >= 0


def _meta(path: Path, raw: Any) -> dict[str, Any]:
    """The gpunet metadata: format and version checked, JSON values decoded."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        fmt = raw.get("format") if isinstance(raw, dict) else None
        raise _fail(path, f"metadata format {fmt!r}, expected {FORMAT!r}")
    version = raw.get("version", "")
    if not str(version).isdigit():
        raise _fail(path, f"metadata version {version!r} is not a number")
    if int(version) > VERSION:
        raise FileFormatError(f"{path}: written by a newer gpunet (file version {version}, "
                         f"this gpunet reads up to {VERSION})")
    meta: dict[str, Any] = {"format": FORMAT, "version": int(version)}
    for key, value in raw.items():
        if key not in meta:
            try:
                meta[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError) as exc:
                raise _fail(path, f"metadata {key!r} is not JSON: {exc}") from exc
    return meta


def _arrays(path: Path, f: Any, start: int, entries: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Each tensor read into its own array (sizes already checked against the file)."""
    arrays = {}
    for name, (dtype, shape, begin, end) in entries.items():
        a = np.empty(shape, dtype=dtype)
        f.seek(start + begin)
        if f.readinto(memoryview(a).cast("B")) != end - begin:
            raise _fail(path, f"tensor {name!r} is cut short")
        arrays[name] = a.astype(dtype.newbyteorder("="), copy=False)
    return arrays


def _layout(path: Path, f: Any) -> tuple[dict[str, Any], dict[str, tuple], int]:
    """(meta, tensor entries, offset of the data) of the open file `f`, all checked."""
    size = path.stat().st_size
    header = _header(path, f, size)
    meta = _meta(path, header.pop("__metadata__", None))
    start = f.tell()
    return meta, _entries(path, header, size - start), start


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    return path


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a gpunet safetensors file; the layout checked, not the architecture."""
    path = _existing(path)
    with open(path, "rb") as f:
        meta, entries, start = _layout(path, f)
        return _arrays(path, f, start, entries), meta


def read_model(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Like `read`, and the architecture and every weight checked against each other before
    the caller builds a single layer (see `gpunet.architecture`)."""
    path = _existing(path)
    with open(path, "rb") as f:
        meta, entries, start = _layout(path, f)
        _, wanted = declared_weights(path, meta)
        check_entries(path, wanted, entries,  # headers only: nothing is allocated before
                      lambda name: (entries[name][1], entries[name][0]))
        arrays = _arrays(path, f, start, entries)
    for key, a in arrays.items():
        check_finite(a, f"{path}: entry {key!r}")
    return arrays, meta
