"""Which launcher started this process, read from its environment: rank, size and local rank.

Each launcher exports its own variables. `mpiexec` of MPICH (Hydra) sets PMI_RANK, PMI_SIZE and
MPI_LOCALRANKID; Open MPI's sets OMPI_COMM_WORLD_RANK, _SIZE and _LOCAL_RANK; PMIx launchers set
PMIX_RANK; Slurm's `srun` sets SLURM_PROCID, SLURM_STEP_NUM_TASKS and SLURM_LOCALID. A Slurm
batch script itself also carries SLURM_PROCID and SLURM_NTASKS, but it is one process, not a
job step of many: only the step's variable (SLURM_STEP_NUM_TASKS, set by srun) counts here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# (launcher, rank variable, size variable, local-rank variable), tried in this order
_LAUNCHERS = (
    ("Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("MPICH (PMI)", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
    ("Slurm srun", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"),
    ("PMIx", "PMIX_RANK", None, None),
)
_LOCAL_FALLBACKS = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                    "PMI_LOCAL_RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class Launch:
    """What the environment says: `size` is None when the launcher does not export it."""

    launcher: str
    rank: int
    size: int | None
    local_rank: int | None
    variable: str  # the variable that identified the launcher, for messages


def detect(environ: Mapping[str, str] | None = None) -> Launch | None:
    """The launcher of this process, or None when it was started alone (no launcher)."""
    env = os.environ if environ is None else environ
    for name, rank_var, size_var, local_var in _LAUNCHERS:
        if rank_var not in env or (size_var is not None and size_var not in env):
            continue
        rank = _int(env, rank_var)
        size = _int(env, size_var) if size_var else None
        local = _int(env, local_var) if local_var and local_var in env else _local(env)
        if size is not None and not 0 <= rank < size:
            raise ValueError(f"launcher environment: {rank_var}={rank} is not in [0, "
                             f"{size_var}={size})")
        return Launch(name, rank, size, local, size_var or rank_var)
    return None


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """Ranks the launcher started (1 when none, or when it does not say)."""
    launch = detect(environ)
    return launch.size or 1 if launch is not None else 1


def _local(env: Mapping[str, str]) -> int | None:
    for var in _LOCAL_FALLBACKS:
        if var in env:
            return _int(env, var)
    return None


def _int(env: Mapping[str, str], var: str) -> int:
    text = env[var]
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"launcher environment: {var} must be an integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"launcher environment: {var} must be >= 0, got {value}")
    return value
