"""The README, tried as a newcomer would: its Python example runs as written, every command-line
option it shows exists, its extras exist, and CI runs exactly its two commands."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys

import pytest

from gpunet.cli import build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def readme_commands():
    spec = importlib.util.spec_from_file_location("readme_commands",
                                                  REPO / ".ci" / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.commands(README)


def test_ci_runs_the_two_first_screen_commands():
    commands = readme_commands()
    assert commands == ['pip install -e . && python scripts/train_mnist.py',
                        'pip install -e ".[test,interop,mpi]" && pytest']
    first_screen = README[:README.index("## In Python")]
    assert all(c in first_screen for c in commands)
    ci = (REPO / ".ci" / "run").read_text()
    assert "readme_commands.py README.md" in ci and "ruff check" in ci


@pytest.mark.slow
def test_python_example_runs_as_written(tmp_path):
    example = blocks("python")[0]  # Deploy's example: tests/interop/test_readme_deploy.py
    proc = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Total params: 242,762" in proc.stdout
    accuracy = float(re.search(r"'accuracy': ([0-9.]+)", proc.stdout).group(1))
    assert accuracy > 0.85
    assert (tmp_path / "mnist.npz").is_file()


def _cli_lines() -> list[list[str]]:
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            for prefix in ("python scripts/train_mnist.py", "gpunet-train",
                           "docker run --rm --gpus all -v gpunet-data:/data gpunet"):
                if line.startswith(prefix):
                    lines.append(shlex.split(line[len(prefix):]))
    return lines


def test_every_cli_line_in_the_readme_parses():
    lines = _cli_lines()
    assert len(lines) >= 3
    parser = build_parser()
    for args in lines:
        parser.parse_args(args)


def test_every_option_in_the_options_table_exists():
    table = README[README.index("| option |"):README.index("It ends with")]
    flags = set(re.findall(r"`(--[a-z-]+)", table))
    known = {a for action in build_parser()._actions for a in action.option_strings}
    assert flags and flags <= known, flags - known


def test_extras_named_in_the_readme_exist():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = set(re.findall(r'\.\[(\w+)\]', README))
    assert extras and extras <= set(project["optional-dependencies"])


def test_package_map_names_real_modules():
    for path in re.findall(r"\| `(gpunet/[\w/.]+|scripts/[\w.]+)` \|", README):
        assert (REPO / path).exists(), path
