"""MPI communicator (mpi4py): host arrays move through MPI; device (CuPy) arrays are staged
through host memory, so no CUDA-aware MPI is needed (for the GPU use the "nccl" backend).

Nothing here pickles: small values travel as JSON text in byte buffers.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import numpy as np

from gpunet import backend
from gpunet.distributed.comm import Communicator


class MPICommunicator(Communicator):
    """Rank of an MPI communicator (default: MPI.COMM_WORLD)."""

    backend = "mpi"

    def __init__(self, comm: Any, local_rank: int | None = None) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        if local_rank is None:  # the rank among the ranks that share this machine's memory
            local = comm.Split_type(MPI.COMM_TYPE_SHARED)
            local_rank = local.Get_rank()
            local.Free()
        super().__init__(comm.Get_rank(), comm.Get_size(), local_rank)

    def _allreduce(self, array: Any) -> None:
        if backend.is_gpu_array(array):
            host = array.get()
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            array.set(host)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, _contiguous(array), op=self.MPI.SUM)

    def bcast_(self, array: Any) -> None:
        if backend.is_gpu_array(array):
            host = array.get()
            self.comm.Bcast(host, root=0)
            array.set(host)
        else:
            self.comm.Bcast(_contiguous(array), root=0)

    def allgather_floats(self, values: list[float]) -> np.ndarray:
        mine = np.asarray(values, dtype=np.float64).reshape(-1)
        out = np.empty((self.size, mine.size), dtype=np.float64)
        self.comm.Allgather(mine, out)
        return out

    def allgather_json(self, obj: Any) -> list[Any]:
        data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
        counts = np.empty(self.size, dtype=np.int64)
        self.comm.Allgather(np.array([data.size], dtype=np.int64), counts)
        buf = np.empty(int(counts.sum()), dtype=np.uint8)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.comm.Allgatherv(data, [buf, counts.tolist(), displs.tolist(), self.MPI.BYTE])
        return [json.loads(buf[a:a + n].tobytes()) for a, n in zip(displs, counts, strict=True)]

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> NoReturn:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)
        raise SystemExit(code)  # not reached: Abort ends the process


def _contiguous(array: np.ndarray) -> np.ndarray:
    if not array.flags.c_contiguous:
        raise ValueError(f"distributed: collectives need C-contiguous arrays, got strides "
                         f"{array.strides} for shape {array.shape}")
    return array
