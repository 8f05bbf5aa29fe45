"""The NCCL backend: run end to end on 2 and 3 MPI ranks with a CPU stand-in for CuPy/NCCL
(the id exchange over MPI, the GPU binding, the calls NCCL receives), and its names and
signatures checked against the real `cupy.cuda.nccl` where CuPy with NCCL is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.distributed import nccl_standin
from tests.distributed.mpirun import mpirun, needs_mpi, output


@needs_mpi
@pytest.mark.parametrize("n,api", [(2, "bytes"), (3, "tuple")])
def test_nccl_backend_on_a_stand_in(n, api):
    proc, _, results = mpirun(n, "nccl_standin", api, str(n))
    assert proc.returncode == 0 and len(results) == n, output(proc)
    results.sort(key=lambda r: r["rank"])
    assert len({r["uid"] for r in results}) == 1, "every rank must get rank 0's id"
    assert [r["made_ids"] for r in results] == [1] + [0] * (n - 1)
    total = sum(range(1, n + 1))
    for r in results:
        assert (r["ctor_size"], r["ctor_rank"]) == (n, r["rank"])
        assert r["device"] == [r["local_rank"]]  # bound to the GPU of its local rank
        assert r["grads"] == (np.arange(5) * total).tolist()
        assert r["params"] == [0.0] * 3 and r["host"] == [float(total)] * 2
        reduce_call, bcast_call = r["calls"]  # the host array never reached NCCL
        assert reduce_call == ["allReduce", r["ptr"], r["ptr"], 5,
                               nccl_standin.CONSTANTS["NCCL_FLOAT32"],
                               nccl_standin.CONSTANTS["NCCL_SUM"], nccl_standin.STREAM_PTR]
        assert bcast_call[0] == "bcast" and bcast_call[2:] == \
            [3, nccl_standin.CONSTANTS["NCCL_FLOAT64"], 0, nccl_standin.STREAM_PTR]


@needs_mpi
def test_nccl_refuses_two_ranks_on_one_gpu_on_every_rank():
    """NCCL cannot put two ranks on one GPU: every rank says so, together, before NCCL starts."""
    proc, _, results = mpirun(2, "nccl_standin", "bytes", "1")
    assert proc.returncode == 0 and len(results) == 2, output(proc)
    for r in results:
        assert "2 ranks on this machine but 1 GPU(s)" in r["error"]


def _real_nccl():
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed: the stand-in's names are checked against the real "
                    "cupy.cuda.nccl only where it is")
    from cupy.cuda import nccl

    if not nccl.available:
        pytest.skip('CuPy finds no NCCL library (pip install "nvidia-nccl-cu12")')
    return nccl


def _argument_error(call) -> str:
    """The TypeError a call raises while converting its arguments (before NCCL is reached):
    never one about argument names or counts when the names and count are right."""
    with pytest.raises(TypeError) as info:
        call()
    message = str(info.value)
    assert "keyword" not in message and "positional" not in message, message
    return message


def test_stand_in_matches_the_real_cupy_nccl():
    """Compiled CuPy methods carry no inspectable signature: call them by keyword with a None
    stream or rank, which fails in argument conversion, before any NCCL call, unless a name is
    wrong. The constants must be the stand-in's."""
    nccl = _real_nccl()
    for name, value in nccl_standin.CONSTANTS.items():
        assert getattr(nccl, name) == value, name
    comm = nccl.NcclCommunicator.__new__(nccl.NcclCommunicator)  # no NCCL init
    _argument_error(lambda: comm.allReduce(sendbuf=0, recvbuf=0, count=1, datatype=7, op=0,
                                           stream=None))
    _argument_error(lambda: comm.bcast(buff=0, count=1, datatype=7, root=0, stream=None))
    _argument_error(lambda: nccl.NcclCommunicator(ndev=2, commId=bytes(128), rank=None))
    assert callable(nccl.get_unique_id)
