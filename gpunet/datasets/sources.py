"""Find a data set's files on disk, downloading the missing ones into the cache.

Each file is looked up, in order, in: the explicit `data_dir` (and `data_dir/<folder>/`),
`$GPUNET_DATA/<folder>/`, the cache `~/.cache/gpunet/<folder>/` (`$XDG_CACHE_HOME` respected),
and for MNIST the copy bundled in the package (the 5k sample and the official test files). A
file may be gzipped (`name.gz`) or raw (`name` without `.gz`). Missing files are downloaded
into the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gpunet.datasets import download
from gpunet.datasets.errors import DatasetError, DatasetUnavailableError
from gpunet.datasets.registry import SPECS, Spec

BUNDLED_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class DataSource:
    """Where a loaded data set came from: one (file name, path, origin) per file, the origin
    being "data_dir", "$GPUNET_DATA", "cache", "downloaded" or "bundled". `n_train`/`n_test`
    are filled in once loaded; `note` explains a fallback (see `load_mnist_default`)."""

    name: str
    title: str
    files: tuple[tuple[str, Path, str], ...]
    n_train: int = 0
    n_test: int = 0
    note: str = ""

    def describe(self) -> str:
        """One line for logs, e.g. "MNIST: 60,000 training / 10,000 test images from cache
        /home/me/.cache/gpunet/mnist"."""
        places = list(dict.fromkeys(f"{origin} {path.parent}" for _, path, origin in self.files))
        text = f"{self.title}: {self.n_train:,} training / {self.n_test:,} test images from "
        text += ", ".join(places)
        return text + (" (fallback: the full data set could not be had)" if self.note else "")

    def __str__(self) -> str:
        return self.describe()


def search_dirs(spec: Spec, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    """The (origin, folder) pairs searched for `spec`'s files, in order."""
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [("data_dir", root), ("data_dir", root / spec.folder)]
    if os.environ.get("GPUNET_DATA"):
        dirs.append(("$GPUNET_DATA", Path(os.environ["GPUNET_DATA"]).expanduser() / spec.folder))
    dirs.append(("cache", download.cache_root() / spec.folder))
    if spec.bundled:
        dirs.append(("bundled", BUNDLED_DIR / spec.folder))
    return dirs


def _find(filename: str, dirs: list[tuple[str, Path]]) -> tuple[Path, str] | None:
    for origin, folder in dirs:
        for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
            if candidate.is_file():
                return candidate, origin
    return None


def _unavailable(spec: Spec, missing: list[str], dirs: list[tuple[str, Path]],
                 reason: str, data_dir: str | os.PathLike | None) -> DatasetUnavailableError:
    cache = download.cache_root() / spec.folder
    target = cache if data_dir is None else Path(data_dir).expanduser()
    lines = [f"{spec.title}: cannot find {', '.join(missing)}; {reason}",
             f"Put these files (gzipped or not) into {target}/ :"]
    mirror = spec.mirrors()[:1]
    lines += [f"  {name}" + (f"  (from {mirror[0]}{name})" if mirror else "") for name in missing]
    lines.append(f"or into $GPUNET_DATA/{spec.folder}/, " + (
        "or into a folder passed as data_dir=..." if data_dir is None
        else f"or into the cache {cache}/, or pass another folder as data_dir=..."))
    lines.append("Searched: " + ", ".join(f"{origin} {folder}" for origin, folder in dirs))
    return DatasetUnavailableError("\n".join(lines))


def locate(name: str, data_dir: str | os.PathLike | None = None,
           download_missing: bool = True) -> DataSource:
    """Find (or download) the four files of data set `name` ("mnist", "mnist-5k",
    "fashion-mnist"). Raises `DatasetUnavailableError` when some cannot be had."""
    if name not in SPECS:
        raise ValueError(f"unknown data set {name!r}; expected one of {tuple(SPECS)}")
    spec = SPECS[name]
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DatasetError(f"data_dir {data_dir}: no such folder")  # not a silent fallback
    dirs = search_dirs(spec, data_dir)
    found = {f: _find(f, dirs) for f in spec.files}
    missing = [f for f in spec.files if found[f] is None]
    if missing and (not download_missing or not spec.mirrors()):
        why = "download=False" if spec.mirrors() else "no download mirror is configured"
        raise _unavailable(spec, missing, dirs, f"nothing was downloaded ({why}).",
                           data_dir)
    for i, filename in enumerate(missing):
        try:
            path = download.fetch(filename, spec.sha256(filename), spec.mirrors(),
                                  download.cache_root() / spec.folder)
        except DatasetUnavailableError as exc:
            failures = str(exc).replace("\n", "\n  ")
            raise _unavailable(spec, missing[i:], dirs,
                               f"downloading them failed:\n  {failures}", data_dir) from exc
        found[filename] = (path, "downloaded")
    files = tuple((f, *found[f]) for f in spec.files)
    return DataSource(spec.name, spec.title, files)
