"""Download files with urllib: SHA-256 checked, written atomically into the cache folder.

A download goes to a temporary file beside its destination and is renamed into place only once
its length and SHA-256 are right (`serialization.write_atomic`); on any failure the temporary
file is removed, so the cache never holds a partial or unverified file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from gpunet.datasets.errors import DatasetUnavailableError
from gpunet.serialization import WriteError, write_atomic

TIMEOUT = 30.0
CHUNK = 1 << 16
USER_AGENT = "gpunet (urllib)"


class DownloadError(Exception):
    """One URL failed; `fetch` collects these into a `DatasetUnavailableError`."""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/gpunet`, or `~/.cache/gpunet` when XDG_CACHE_HOME is unset."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "gpunet"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stream(url: str, out, timeout: float) -> tuple[int, int | None, str]:
    """Copy `url` into the open file `out`; return (bytes received, Content-Length, sha256)."""
    digest, received = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot connect ({exc.reason})") from exc
    except TimeoutError as exc:
        raise DownloadError(f"timed out after {timeout:g} s") from exc
    except (http.client.HTTPException, ConnectionError, ssl.SSLError) as exc:
        raise DownloadError(f"connection broke after {received} bytes "
                            f"({type(exc).__name__}: {exc})") from exc
    return received, int(length) if length and length.isdigit() else None, digest.hexdigest()


def _download(url: str, sha256: str, dest: Path, timeout: float) -> None:
    def verified(out: BinaryIO) -> None:  # raising here discards the temporary file
        received, length, got = _stream(url, out, timeout)
        if length is not None and received != length:
            raise DownloadError(f"connection broke after {received} of {length} bytes")
        if got != sha256:
            raise DownloadError(f"SHA-256 mismatch ({received} bytes with sum {got}, expected "
                                f"{sha256}); the download was discarded")

    write_atomic(dest, verified)


def fetch(filename: str, sha256: str, mirrors: list[str], dest_dir: Path,
          timeout: float | None = None) -> Path:
    """Download `filename` from the first mirror that serves it with the right SHA-256.

    Returns `dest_dir / filename`. Raises `DatasetUnavailableError` listing, one line per
    mirror, what went wrong when none succeeds.
    """
    timeout = TIMEOUT if timeout is None else timeout
    dest = Path(dest_dir) / filename
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetUnavailableError(f"cannot create the cache folder {dest.parent} ({exc}); "
                                      "set XDG_CACHE_HOME or pass data_dir") from exc
    failures = []
    for base in mirrors:
        url = base + filename
        print(f"gpunet: downloading {url}", file=sys.stderr, flush=True)
        try:
            _download(url, sha256, dest, timeout)
            return dest
        except DownloadError as exc:
            failures.append(f"{url}: {exc}")
        except WriteError as exc:  # the cache folder is not writable, or the disk is full
            raise DatasetUnavailableError(f"{exc}; set XDG_CACHE_HOME or pass data_dir") \
                from exc
    raise DatasetUnavailableError("\n".join(failures) or "no download mirror is configured")
