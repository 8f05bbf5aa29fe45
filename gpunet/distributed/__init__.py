"""Data-parallel training over many processes: MPI (mpi4py) starts the ranks and moves host
arrays, NCCL (CuPy) moves device arrays, the design of ChainerMN and Horovod.

    comm = gn.distributed.init()          # under mpiexec/srun: all ranks; alone: 1 rank
    model.fit(x, y, batch_size=128, distributed=comm)    # 128 = the global batch
    model.evaluate(x, y, distributed=comm)               # the whole set's figures, every rank

Importing this package never imports mpi4py or CuPy; `init()` does, when launched.
See docs/distributed.md.
"""

from gpunet.distributed import launch
from gpunet.distributed.comm import CollectiveError, Communicator, SingleCommunicator, on_every_rank
from gpunet.distributed.data_parallel import Ranks, RankStep
from gpunet.distributed.faults import abort_on_error, guarded
from gpunet.distributed.training import (
    BatchPlan,
    agree,
    check_in_sync,
    data_facts,
    evaluate_sharded,
    is_single,
    is_writer,
    rank_callbacks,
    rank_seed,
    rank_stream,
    reduce_gradients,
    reduce_sums,
    shard_bounds,
    start,
    start_fit,
)
from gpunet.distributed.world import current, init

__all__ = [
    "BatchPlan", "CollectiveError", "Communicator", "RankStep", "Ranks", "SingleCommunicator",
    "abort_on_error",
    "agree", "check_in_sync", "current", "data_facts", "evaluate_sharded", "guarded", "init",
    "is_single", "is_writer", "launch", "on_every_rank", "rank_callbacks", "rank_seed",
    "rank_stream", "reduce_gradients", "reduce_sums", "shard_bounds", "start", "start_fit",
]
