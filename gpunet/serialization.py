"""Safe, atomic `.npz` files: written to a temporary file and renamed into place, loaded with
`allow_pickle=False` so that nothing we load can run code."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gpunet import backend

FORMAT = "gpunet"
VERSION = 1


def write_npz(path: str | os.PathLike, arrays: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Atomically write `arrays` (host or device) and a JSON `meta` dict to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: backend.to_numpy(v) for k, v in arrays.items()}
    payload["__meta__"] = np.array(json.dumps({"format": FORMAT, "version": VERSION, **meta}))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by `write_npz`; return (arrays, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model or checkpoint file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable gpunet .npz file ({exc})") from exc
    if "__meta__" not in arrays:
        raise ValueError(f"{path}: not a gpunet file (no __meta__ entry)")
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path}: written by a newer gpunet (file version {meta['version']}, "
                         f"this gpunet reads up to {VERSION})")
    return arrays, meta
