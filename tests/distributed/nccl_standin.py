"""A stand-in for `cupy` and `cupy.cuda.nccl` that runs on the CPU: "device" arrays are host
arrays of a marked class, and the NCCL communicator performs its collectives through MPI on the
raw pointers it is given, so `NCCLCommunicator` runs end to end without a GPU. It records every
call, and checks argument types as CuPy's Cython signatures do (cupy_backends/cuda/libs/
nccl.pyx: `NcclCommunicator(int ndev, bytes commId, int rank)` since CuPy 14, a tuple commId
before; `allReduce(intptr_t sendbuf, intptr_t recvbuf, size_t count, int datatype, int op,
intptr_t stream)`; `bcast(intptr_t buff, size_t count, int datatype, int root, intptr_t
stream)`)."""

from __future__ import annotations

import ctypes
import os
from types import SimpleNamespace
from typing import Any

import numpy as np

# the values of cupy_backends/cuda/libs/nccl.pxd
CONSTANTS = {"NCCL_SUM": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_INT64": 4,
             "NCCL_FLOAT16": 6, "NCCL_FLOAT32": 7, "NCCL_FLOAT64": 8}
_DTYPES = {1: np.uint8, 2: np.int32, 4: np.int64, 6: np.float16, 7: np.float32, 8: np.float64}
STREAM_PTR = 0xC0FFEE


class DeviceArray(np.ndarray):
    """What the stand-in calls a device array."""


def device_array(values: Any) -> DeviceArray:
    return np.ascontiguousarray(values).view(DeviceArray)


def _ints(*values: Any) -> None:
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"an integer argument was {type(v).__name__}: {v!r}")


def _at(ptr: int, count: int, datatype: int) -> np.ndarray:
    dtype = np.dtype(_DTYPES[datatype])
    buf = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=count)


class Nccl(SimpleNamespace):
    """The module stand-in; `tuple_api` mimics CuPy before 14."""

    def __init__(self, tuple_api: bool = False) -> None:
        super().__init__(**CONSTANTS, available=True)
        self.tuple_api = tuple_api
        self.calls: list[tuple[Any, ...]] = []
        stand_in = self

        class NcclCommunicator:
            def __init__(self, ndev: int, commId: Any, rank: int) -> None:  # noqa: N803
                _ints(ndev, rank)
                expected = tuple if stand_in.tuple_api else bytes
                if not isinstance(commId, expected) or len(commId) != 128:
                    raise TypeError(f"commId must be {expected.__name__} of 128, got "
                                    f"{type(commId).__name__}")
                stand_in.calls.append(("NcclCommunicator", ndev, commId, rank))

            def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int,  # noqa: N802
                          op: int, stream: int) -> None:
                _ints(sendbuf, recvbuf, count, datatype, op, stream)
                stand_in.calls.append(("allReduce", sendbuf, recvbuf, count, datatype, op,
                                       stream))
                from mpi4py import MPI

                data = _at(recvbuf, count, datatype)
                data[...] = _at(sendbuf, count, datatype)
                MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, data, op=MPI.SUM)

            def bcast(self, buff: int, count: int, datatype: int, root: int,
                      stream: int) -> None:
                _ints(buff, count, datatype, root, stream)
                stand_in.calls.append(("bcast", buff, count, datatype, root, stream))
                from mpi4py import MPI

                MPI.COMM_WORLD.Bcast(_at(buff, count, datatype), root=root)

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self) -> Any:
        self.calls.append(("get_unique_id",))
        raw = os.urandom(128)
        return tuple(int(b) for b in np.frombuffer(raw, np.int8)) if self.tuple_api else raw


def cupy(devices: int) -> SimpleNamespace:
    """The CuPy stand-in: `devices` GPUs; records which one was bound."""
    used: list[int] = []

    class Device:
        def __init__(self, i: int) -> None:
            self.i = i

        def use(self) -> None:
            used.append(self.i)

    cuda = SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: devices),
                           Device=Device,
                           get_current_stream=lambda: SimpleNamespace(ptr=STREAM_PTR))
    return SimpleNamespace(ndarray=DeviceArray, cuda=cuda, used=used)
