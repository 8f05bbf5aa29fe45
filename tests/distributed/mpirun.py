"""Running a scenario of mpi_job.py under a real `mpiexec -n N` of this Python environment."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
JOB = Path(__file__).resolve().parent / "mpi_job.py"
# the venv's own mpiexec first (pip's mpich), the one mpi4py's library speaks to
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or \
    shutil.which("mpiexec")
SKIP_REASON = ('mpi4py is not installed (pip install -e ".[test,mpi]")'
               if importlib.util.find_spec("mpi4py") is None else
               "no mpiexec on PATH or beside this Python (pip install mpich)"
               if MPIEXEC is None else None)
needs_mpi = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def mpirun(n: int, *args: str, timeout: float = 120, script: Path | None = JOB
           ) -> tuple[subprocess.CompletedProcess, float, list[dict[str, Any]]]:
    """(process, seconds, the RESULT lines as dicts) of `mpiexec -n n python script args`
    (script None: `python args`, e.g. "-m", "module")."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    head = [str(script)] if script is not None else []
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *head, *args],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO, check=False)
    seconds = time.perf_counter() - t0
    results = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
               if line.startswith("RESULT ")]
    return proc, seconds, results


def output(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
