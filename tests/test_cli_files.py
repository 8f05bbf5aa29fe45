"""The training command's output checks, locks and signal handling, in-process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from gpunet import cli_files
from gpunet.cli_files import OutputLocks, Signals, UsageError, check_outputs


def test_default_checkpoints_are_unique_per_run():
    name = cli_files.default_checkpoint()
    assert re.fullmatch(rf"runs/checkpoint-\d{{8}}-\d{{6}}-{os.getpid()}\.npz", name)
    other = subprocess.run([sys.executable, "-c", "from gpunet.cli_files import "
                            "default_checkpoint as d; print(d())"], capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert other.stdout.strip() != name


@pytest.mark.parametrize("outputs, fragment", [
    ([("--save", "{tmp}", 1)], "--save {tmp}: cannot write there: it is a folder"),
    ([("--save", "{tmp}/a.npz", 1), ("--json", "{tmp}/./a.npz", 1)],
     "--json and --save name the same file"),
    ([("--checkpoint", "{tmp}/f/x.npz", 1)], "--checkpoint {tmp}/f/x.npz: cannot write there"),
    ([("--checkpoint", "{tmp}/c.npz", 10**15)], "--checkpoint: not enough free space"),
])
def test_check_outputs_names_the_option(tmp_path, outputs, fragment):
    (tmp_path / "f").write_text("a file where a folder is expected")
    outputs = [(o, p.format(tmp=tmp_path), n) for o, p, n in outputs]
    with pytest.raises(UsageError, match=re.escape(fragment.format(tmp=tmp_path))):
        check_outputs(outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing left behind


def test_a_second_writer_of_the_same_file_is_refused(tmp_path):
    target = tmp_path / "ck.npz"
    with OutputLocks() as first:
        first.acquire("--checkpoint", target)
        code = ("import sys; from gpunet.cli_files import OutputLocks, UsageError\n"
                "try:\n    OutputLocks().acquire('--checkpoint', sys.argv[1])\n"
                "except UsageError as e:\n    print(e)")
        other = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert f"another running gpunet-train (pid {os.getpid()})" in other.stdout
    assert not (tmp_path / ".ck.npz.lock").exists()
    with OutputLocks() as again:  # released: the next run may write it
        again.acquire("--checkpoint", target)


def test_sigterm_becomes_a_keyboard_interrupt_and_the_handler_is_put_back():
    previous = signal.getsignal(signal.SIGTERM)
    with Signals() as signals, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, at once
            pass
    assert signals.exit_code == 143 and signals.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == previous
    assert Signals().exit_code == 130
