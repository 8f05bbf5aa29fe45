"""The communicator interface every backend implements, and the 1-rank communicator used when
no launcher started the process.

Collectives, as data-parallel training needs them:
- `allreduce_(a)`: sum an array over all ranks, in place (the flat gradient, once per step);
- `bcast_(a)`: overwrite an array with rank 0's (the initial parameters);
- `allgather_floats(values)`: every rank's few float64 numbers (metric sums, summed by the
  caller in rank order, so every rank gets bit-identical figures);
- `allgather_json(obj)`: every rank's small JSON value (argument and data checks; no pickle);
- `barrier()`, and `abort()`, which ends every rank (MPI_Abort).
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

import numpy as np


class CollectiveError(ValueError):
    """An error raised on every rank at the same point (ranks disagree, or a check every rank
    makes alike failed): each rank can report it and exit normally, no abort is needed."""

    collective = True


def on_every_rank(exc: BaseException) -> BaseException:
    """Mark an exception that every rank raises at the same point (see `CollectiveError`)."""
    exc.collective = True  # type: ignore[attr-defined]
    return exc


def _interface(comm: Any, method: str) -> NotImplementedError:
    return NotImplementedError(f"{type(comm).__name__} does not implement {method}: a "
                               "Communicator backend provides every collective")


class Communicator:
    """Rank `rank` of `size`; `local_rank` is its index among the ranks of its machine (it picks
    the GPU). `allreduce_seconds` / `allreduce_calls` time the array all-reduces (host time: on
    the GPU with NCCL that is the time to enqueue, the reduction itself runs on the stream).

    This class is the interface: each backend (`SingleCommunicator`, `mpi.MPICommunicator`,
    `nccl.NCCLCommunicator`) implements every collective below; calling one on the base class
    says which method the backend lacks."""

    backend = "none"

    def __init__(self, rank: int, size: int, local_rank: int) -> None:
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.allreduce_seconds = 0.0
        self.allreduce_calls = 0

    def allreduce_(self, array: Any) -> None:
        t0 = time.perf_counter()
        self._allreduce(array)
        self.allreduce_seconds += time.perf_counter() - t0
        self.allreduce_calls += 1

    def _allreduce(self, array: Any) -> None:
        raise _interface(self, "_allreduce")

    def bcast_(self, array: Any) -> None:
        raise _interface(self, "bcast_")

    def allgather_floats(self, values: list[float]) -> np.ndarray:
        """(size, len(values)) float64: row r holds rank r's values."""
        raise _interface(self, "allgather_floats")

    def allgather_json(self, obj: Any) -> list[Any]:
        raise _interface(self, "allgather_json")

    def bcast_json(self, obj: Any) -> Any:
        """Rank 0's JSON value on every rank."""
        return self.allgather_json(obj if self.rank == 0 else None)[0]

    def barrier(self) -> None:
        raise _interface(self, "barrier")

    def abort(self, code: int = 1) -> NoReturn:
        raise _interface(self, "abort")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size}, " \
               f"local_rank={self.local_rank}, backend={self.backend!r})"


class SingleCommunicator(Communicator):
    """One rank, no launcher: every collective is the identity (nothing imports mpi4py)."""

    backend = "single"

    def __init__(self) -> None:
        super().__init__(0, 1, 0)

    def _allreduce(self, array: Any) -> None:
        return None

    def bcast_(self, array: Any) -> None:
        return None

    def allgather_floats(self, values: list[float]) -> np.ndarray:
        return np.asarray([values], dtype=np.float64).reshape(1, -1)

    def allgather_json(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        return None

    def abort(self, code: int = 1) -> NoReturn:
        raise SystemExit(code)
