"""Launcher detection from the environment (no MPI needed)."""

from __future__ import annotations

import pytest

from gpunet.distributed import launch


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    ({"PMI_RANK": "1", "PMI_SIZE": "3", "MPI_LOCALRANKID": "1"}, ("MPICH (PMI)", 1, 3, 1)),
    ({"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8",
      "OMPI_COMM_WORLD_LOCAL_RANK": "1"}, ("Open MPI", 5, 8, 1)),
    ({"SLURM_PROCID": "6", "SLURM_STEP_NUM_TASKS": "64", "SLURM_LOCALID": "2",
      "SLURM_NTASKS": "64"}, ("Slurm srun", 6, 64, 2)),
    ({"PMIX_RANK": "2", "SLURM_LOCALID": "0"}, ("PMIx", 2, None, 0)),
    ({"PMI_RANK": "0", "PMI_SIZE": "2"}, ("MPICH (PMI)", 0, 2, None)),
])
def test_detects_each_launcher(env, expected):
    found = launch.detect(env)
    got = None if found is None else (found.launcher, found.rank, found.size, found.local_rank)
    assert got == expected


def test_a_slurm_batch_script_alone_is_not_a_launch():
    """sbatch's script carries SLURM_PROCID and SLURM_NTASKS but is one process; srun steps
    carry SLURM_STEP_NUM_TASKS."""
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "17"}
    assert launch.detect(env) is None
    assert launch.launched_size(env) == 1


def test_launched_size():
    assert launch.launched_size({"PMI_RANK": "0", "PMI_SIZE": "4"}) == 4
    assert launch.launched_size({"PMIX_RANK": "0"}) == 1  # PMIx alone does not say


@pytest.mark.parametrize("env,fragment", [
    ({"PMI_RANK": "x", "PMI_SIZE": "2"}, "PMI_RANK must be an integer, got 'x'"),
    ({"PMI_RANK": "2", "PMI_SIZE": "2"}, "PMI_RANK=2 is not in [0, PMI_SIZE=2)"),
    ({"OMPI_COMM_WORLD_RANK": "-1", "OMPI_COMM_WORLD_SIZE": "2"}, "must be >= 0"),
])
def test_a_broken_environment_is_one_clear_error(env, fragment):
    with pytest.raises(ValueError, match=None) as info:
        launch.detect(env)
    assert fragment in str(info.value)
