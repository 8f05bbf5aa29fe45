"""NCCL communicator: device (CuPy) arrays are reduced by NCCL on the compute stream, in place;
host arrays and small values go through MPI, which also carries NCCL's unique id from rank 0
to the others (so no CUDA-aware MPI is needed). Written against `cupy.cuda.nccl`
(cupy_backends/cuda/libs/nccl.pyx): `get_unique_id()` returns bytes since CuPy 14 (a tuple of
128 signed chars before), `NcclCommunicator(ndev, commId, rank)` takes the same type, and
`allReduce(sendbuf, recvbuf, count, datatype, op, stream)` / `bcast(buff, count, datatype,
root, stream)` take raw device pointers and a stream pointer.

Each rank drives the GPU given by its local rank. NCCL refuses two ranks on one GPU
("Duplicate GPU detected"), so a machine needs a GPU per rank (the "mpi" backend has no such
limit: it stages device arrays through host memory).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet import backend
from gpunet.distributed.comm import CollectiveError
from gpunet.distributed.mpi import MPICommunicator

ID_BYTES = 128  # NCCL_UNIQUE_ID_BYTES


class NCCLCommunicator(MPICommunicator):
    """MPI for host data and coordination, NCCL for device arrays. `cupy` and `nccl` may be
    stand-ins (the tests use ones that reduce through MPI)."""

    backend = "nccl"

    def __init__(self, comm: Any, local_rank: int | None = None, cupy: Any = None,
                 nccl: Any = None) -> None:
        super().__init__(comm, local_rank)
        self.cp, self.nccl = cupy, nccl
        self.device_id = self._bind_device()
        self.nccl_comm = self._connect()

    def _bind_device(self) -> int:
        """Use the GPU of this rank's local rank; every rank checks before NCCL starts and all
        raise together when any cannot (no CuPy, no NCCL, too few GPUs)."""
        problem, device = None, -1
        try:
            if self.cp is None:
                self.cp = _import_cupy()
            if self.nccl is None:
                self.nccl = _import_nccl()
            count = self.cp.cuda.runtime.getDeviceCount()
            local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
            local_size = local.Get_size()
            local.Free()
            if count < local_size:
                problem = (f"{local_size} ranks on this machine but {count} GPU(s): NCCL needs "
                           "one GPU per rank (use backend='mpi', or fewer ranks per machine)")
            else:
                device = self.local_rank % count
                self.cp.cuda.Device(device).use()
        except _Missing as exc:
            problem = str(exc)
        except Exception as exc:  # no driver, no device: reported by every rank below
            problem = f"{type(exc).__name__}: {exc}"
        problems = self.allgather_json(problem)
        bad = [f"rank {r}: {p}" for r, p in enumerate(problems) if p]
        if bad:
            raise CollectiveError("distributed backend 'nccl': " + "; ".join(bad))
        return device

    def _connect(self) -> Any:
        """Rank 0 makes the unique id; MPI broadcasts it (flag byte: 1 = bytes API)."""
        buf = np.zeros(1 + ID_BYTES, dtype=np.uint8)
        if self.rank == 0:
            uid = self.nccl.get_unique_id()
            buf[0] = isinstance(uid, bytes)
            raw = np.frombuffer(uid, np.uint8) if isinstance(uid, bytes) \
                else (np.asarray(uid, dtype=np.int64) & 0xFF).astype(np.uint8)
            if raw.size != ID_BYTES:
                raise RuntimeError(f"NCCL unique id has {raw.size} bytes, expected {ID_BYTES}")
            buf[1:] = raw
        self.comm.Bcast(buf, root=0)
        uid = buf[1:].tobytes() if buf[0] else tuple(int(v) for v in buf[1:].view(np.int8))
        return self.nccl.NcclCommunicator(self.size, uid, self.rank)

    def _datatype(self, array: Any) -> int:
        names = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "float16": "NCCL_FLOAT16",
                 "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}
        name = names.get(np.dtype(array.dtype).name)
        if name is None:
            raise ValueError(f"distributed (nccl): no NCCL type for dtype {array.dtype}")
        return getattr(self.nccl, name)

    def _device(self, array: Any) -> bool:
        """True for a device array (checked contiguous); host arrays go through MPI."""
        if not isinstance(array, self.cp.ndarray):
            return False
        if not array.flags.c_contiguous:
            raise ValueError("distributed (nccl): collectives need C-contiguous arrays")
        return True

    def _allreduce(self, array: Any) -> None:
        if not self._device(array):
            return super()._allreduce(array)
        stream = self.cp.cuda.get_current_stream().ptr  # ordered after the backward pass
        self.nccl_comm.allReduce(_ptr(array), _ptr(array), array.size, self._datatype(array),
                                 self.nccl.NCCL_SUM, stream)

    def bcast_(self, array: Any) -> None:
        if not self._device(array):
            return super().bcast_(array)
        stream = self.cp.cuda.get_current_stream().ptr
        self.nccl_comm.bcast(_ptr(array), array.size, self._datatype(array), 0, stream)


def _ptr(array: Any) -> int:
    """A CuPy array's device pointer (a stand-in's host address in the tests)."""
    data = array.data
    return data.ptr if hasattr(data, "ptr") else array.ctypes.data


class _Missing(RuntimeError):
    """CuPy or NCCL is not there."""


def _import_cupy() -> Any:
    cp = backend._import_cupy()
    if cp is None:
        raise _Missing('CuPy does not import: pip install "gpunet[gpu]"')
    return cp


def _import_nccl() -> Any:
    try:
        from cupy.cuda import nccl
    except ImportError as exc:
        raise _Missing(f"cupy.cuda.nccl does not import ({exc})") from exc
    if not getattr(nccl, "available", True):
        raise _Missing('CuPy finds no NCCL library: pip install "nvidia-nccl-cu12>=2.18.1,<3"')
    return nccl
