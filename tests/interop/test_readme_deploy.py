"""The README's Deploy section, run as written: its Python example and its commands."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from gpunet import cli_export
from gpunet import reference_models as models
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
DEPLOY = README[README.index("## Deploy"):README.index("## Map of the package")]


@pytest.fixture
def mnist_npz(tmp_path):
    pytest.importorskip("onnx", reason="pip install 'gpunet[interop]'")
    pytest.importorskip("torch")
    models.mlp(device="cpu").save(tmp_path / "mnist.npz")  # what the training example saves
    return tmp_path


def test_the_deploy_example_runs_as_written(mnist_npz):
    (example,) = re.findall(r"```python\n(.*?)```", DEPLOY, re.S)
    proc = subprocess.run([sys.executable, "-c", example], cwd=mnist_npz, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert (mnist_npz / "mnist.onnx").stat().st_size > 900_000
    assert (mnist_npz / "mnist.safetensors").stat().st_size > 900_000


def test_the_deploy_commands_run(mnist_npz, capsys, monkeypatch):
    monkeypatch.chdir(mnist_npz)
    lines = [line.split("#")[0].split() for line in DEPLOY.splitlines()
             if line.startswith("gpunet-export ")]
    assert len(lines) == 2
    for line in lines:
        assert cli_export.main(line[1:]) == 0
        assert (mnist_npz / line[2]).is_file()
    assert shlex.split(DEPLOY[DEPLOY.index("pip install"):].split("#")[0]) == \
        ["pip", "install", "-e", ".[interop]"]
