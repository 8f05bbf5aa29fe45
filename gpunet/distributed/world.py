"""`init()`: the communicator of this process, chosen from how it was launched."""

from __future__ import annotations

from typing import Any

from gpunet.distributed import launch
from gpunet.distributed.comm import Communicator, SingleCommunicator

BACKENDS = ("auto", "mpi", "nccl")
_current: Communicator | None = None


def init(backend: str = "auto") -> Communicator:
    """The communicator of this process; the same object on every later call.

    Under a launcher (mpiexec, srun: see `gpunet.distributed.launch`) it spans all its ranks;
    started alone it is a 1-rank communicator and mpi4py is not imported. backend: "mpi"
    (host arrays through MPI, device arrays staged through the host), "nccl" (device arrays
    through NCCL, each rank bound to the GPU of its local rank) or "auto" ("nccl" when CuPy
    sees a GPU and has NCCL, else "mpi"). Call it before building the model, so that CuPy
    allocates on the rank's own GPU.
    """
    global _current
    if backend not in BACKENDS:
        raise ValueError(f"distributed.init: backend must be one of {BACKENDS}, got {backend!r}")
    if _current is not None:
        if backend not in ("auto", _current.backend) and _current.size > 1:
            raise ValueError(f"distributed.init: already initialised with backend "
                             f"{_current.backend!r}, asked for {backend!r}")
        return _current
    found = launch.detect()
    if found is None and backend == "auto":
        _current = SingleCommunicator()
        return _current
    world = _mpi_world(found)
    if found is not None and found.size is not None and found.size != world.Get_size():
        raise RuntimeError(
            f"distributed.init: {found.launcher} started {found.size} ranks ({found.variable}) "
            f"but MPI sees {world.Get_size()}: mpi4py's MPI library is not the one the launcher "
            "speaks to (under Slurm try srun --mpi=pmi2 or pmix, or mpiexec from that MPI)")
    local_rank = found.local_rank if found is not None else None
    if backend == "auto":  # "nccl" only when every rank can use it
        backend = "nccl" if _all(world, _nccl_usable()) else "mpi"
    if backend == "nccl":
        from gpunet.distributed.nccl import NCCLCommunicator

        _current = NCCLCommunicator(world, local_rank)
    else:
        from gpunet.distributed.mpi import MPICommunicator

        _current = MPICommunicator(world, local_rank)
        _bind_gpu(_current.local_rank)
    return _current


def current() -> Communicator | None:
    """The communicator `init()` made, or None before the first call."""
    return _current


def _mpi_world(found: launch.Launch | None) -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        where = f"{found.launcher} started this process ({found.variable}), but " \
            if found is not None else ""
        raise RuntimeError(f"distributed: {where}mpi4py does not import ({exc}): "
                           'pip install "gpunet[mpi]"') from exc
    return MPI.COMM_WORLD


def _all(world: Any, flag: bool) -> bool:
    """True on every rank when `flag` is true on every rank (an MPI MIN, no pickle)."""
    import numpy as np
    from mpi4py import MPI

    out = np.zeros(1, dtype=np.int32)
    world.Allreduce(np.array([int(flag)], dtype=np.int32), out, op=MPI.MIN)
    return bool(out[0])


def _bind_gpu(local_rank: int) -> None:
    """With the "mpi" backend on GPUs: rank i of a machine uses GPU i mod count (GPUs may be
    shared). Nothing happens without CuPy or a device."""
    from gpunet import backend

    cp = backend._import_cupy()
    if cp is None:
        return
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception:
        return
    if count > 0:
        cp.cuda.Device(local_rank % count).use()


def _nccl_usable() -> bool:
    """CuPy imports, sees a GPU and has NCCL (no kernel runs: the device is not bound yet)."""
    from gpunet import backend

    cp = backend._import_cupy()
    if cp is None:
        return False
    try:
        from cupy.cuda import nccl

        return bool(getattr(nccl, "available", True)) and cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False
