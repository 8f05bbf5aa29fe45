"""The training command under faults, run as a user runs it (a subprocess, a tiny Fashion-MNIST
subset, one or two epochs): signals, damaged --resume files, unwritable outputs, a read-only or
full disk (real tmpfs mounts in a private mount namespace), divergence, two runs at once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import gpunet as gn
from gpunet import serialization as ser
from tests.conftest import REPO
from tests.test_cli import SCRIPT, one_line_error, train

FAST = ["--dataset", "fashion-mnist", "--train-subset", "300", "--epochs", "1"]


@pytest.fixture(scope="module")
def data_env():
    from tests.conftest import shared_data_dir

    path = shared_data_dir()
    if not (path / "fashion-mnist").is_dir():
        pytest.skip(f"real data sets not found at {path} (set GPUNET_DATA)")
    return {"GPUNET_DATA": str(path)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_env):
    """One finished 1-epoch run: its checkpoint and best model."""
    d = tmp_path_factory.mktemp("trained")
    proc = train(*FAST, "--save", str(d / "best.npz"), "--checkpoint", str(d / "ck.npz"),
                 env=data_env)
    assert proc.returncode == 0, proc.stderr
    return d


def fast(*args: str, env: dict, **kw) -> subprocess.CompletedProcess:
    return train(*FAST, *args, env=env, **kw)


@pytest.mark.parametrize("args, fragment", [
    (["--data-dir", "/nonexistent"], "--data-dir /nonexistent: no such folder"),
    (["--save", "best-{foo}.npz"], "--save best-{foo}.npz"),
    (["--save", "{tmp}"], "--save {tmp}: cannot write there: it is a folder"),
    (["--checkpoint", "{tmp}"], "--checkpoint {tmp}: cannot write there: it is a folder"),
    (["--save", "/dev/full"], "--save /dev/full: cannot write there: it exists and is not a"),
    (["--save", "/proc/gpunet/best.npz"], "--save /proc/gpunet/best.npz: cannot write there"),
    (["--checkpoint", "{tmp}/f/ck.npz"], "--checkpoint {tmp}/f/ck.npz: cannot write there"),
    (["--save", "{tmp}/x.npz", "--json", "{tmp}/x.npz"], "--json and --save name the same"),
    (["--lr", "inf"], "--lr: must be a finite number > 0, got inf"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--train-subset", "5"], "--val-split 0.1 of 5 training images leaves 0 for validation"),
])
def test_user_errors_exit_2_before_training(tmp_path, data_env, args, fragment):
    (tmp_path / "f").write_text("a file where a folder is expected")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = fast(*args, env=data_env)
    one_line_error(proc, fragment.replace("{tmp}", str(tmp_path)))
    assert "epoch 1/1" not in proc.stdout  # refused before training started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert not (REPO / "runs").exists() or not any((REPO / "runs").glob("*.lock"))


def forged_checkpoint(trained, tmp_path, **meta):
    arrays, old = ser.read_npz(trained / "ck.npz")
    old.update(meta)
    old.pop("format"), old.pop("version")
    return ser.write_npz(tmp_path / "forged.npz", arrays, old)


def put(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, fragment", [
    (lambda d, t: put(t / "empty.npz", b""), "empty (0 bytes)"),
    (lambda d, t: put(t / "cut.npz", (d / "ck.npz").read_bytes()[:5000]),
     "truncated or damaged"),
    (lambda d, t: np.save(t / "a.npy", np.zeros(3)) or t / "a.npy", "single .npy array"),
    (lambda d, t: put(t / "notes.txt", b"hello"), "not a zip archive"),
    (lambda d, t: d / "best.npz", "is a saved model"),
    (lambda d, t: forged_checkpoint(d, t, next_epoch=-3), "next_epoch must be"),
])
def test_bad_resume_files_exit_2(trained, tmp_path, data_env, make, fragment):
    path = make(trained, tmp_path)
    proc = fast("--resume", str(path), env=data_env)
    one_line_error(proc, "--resume", str(path), fragment)


def test_resume_refuses_lr_and_changed_data_options(trained, data_env):
    ck = str(trained / "ck.npz")
    one_line_error(fast("--resume", ck, "--lr", "0.1", env=data_env),
                   "--lr cannot be combined with --resume")
    one_line_error(fast("--resume", ck, "--seed", "3", "--epochs", "2", env=data_env),
                   "--seed 3 differs from the checkpoint's 0")
    one_line_error(train("--dataset", "fashion-mnist", "--train-subset", "400", "--resume", ck,
                         env=data_env), "--train-subset '400' differs")
    one_line_error(fast("--resume", ck, env=data_env),
                   "has finished 1 epochs, so --epochs 1 leaves nothing to train")
    one_line_error(fast("--resume", ck, "--epochs", "2", "--json", ck, env=data_env),
                   f"--json {ck} would overwrite the --resume checkpoint")


def test_resume_into_a_new_checkpoint_continues(trained, tmp_path, data_env):
    new = tmp_path / "next.npz"
    proc = train("--dataset", "fashion-mnist", "--train-subset", "300", "--epochs", "2",
                 "--resume", str(trained / "ck.npz"), "--checkpoint", str(new), env=data_env)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout and "epoch 1/2" not in proc.stdout
    assert ser.read_npz(new)[1]["next_epoch"] == 2
    assert ser.read_npz(trained / "ck.npz")[1]["next_epoch"] == 1  # the resumed file untouched


def test_save_template_and_umask(tmp_path, data_env):
    proc = subprocess.run(SCRIPT + FAST + ["--epochs", "2", "--save",
                                           str(tmp_path / "best-{epoch}.npz"),
                                           "--checkpoint", str(tmp_path / "ck.npz"),
                                           "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, **data_env}, preexec_fn=lambda: os.umask(0o027))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "best-1.npz" in names and "best-{epoch}.npz" not in names, names
    for name in names:
        assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o640), name


def test_a_diverged_run_exits_3_and_saves_no_model(tmp_path, data_env):
    proc = fast("--optimizer", "sgd", "--lr", "1e12", "--save", str(tmp_path / "best.npz"),
                "--checkpoint", str(tmp_path / "ck.npz"), env=data_env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gpunet-train")]
    assert len(errors) == 1 and "training diverged" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "best.npz").exists()


def start(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(SCRIPT + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})


def wait_for(proc: subprocess.Popen, prefix: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError("".join(seen) + proc.stderr.read())


def test_sigterm_keeps_the_checkpoint_and_exits_143(tmp_path, data_env):
    ck = tmp_path / "ck.npz"
    proc = start("--dataset", "fashion-mnist", "--train-subset", "1000", "--epochs", "500",
                 "--patience", "500", "--checkpoint", str(ck), env=data_env)
    seen = wait_for(proc, "epoch 2/500")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    text = "".join(seen) + out
    assert proc.returncode == 143, text + err
    assert "Traceback" not in err
    assert f"continue with --resume {ck}" in text and "(SIGTERM)" in text
    epochs = ser.read_npz(ck)[1]["next_epoch"]
    assert epochs >= 1  # the line is printed just before its checkpoint is written
    assert not list(tmp_path.glob(".*"))  # no temp or lock file left
    resumed = train("--dataset", "fashion-mnist", "--train-subset", "1000", "--epochs",
                    str(epochs + 1), "--resume", str(ck), env=data_env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {epochs + 1}/{epochs + 1}" in resumed.stdout
    assert "epoch 1/" not in resumed.stdout


def test_ctrl_c_in_the_first_epoch_writes_and_promises_nothing(trained, tmp_path, data_env):
    """An existing, better best.npz survives; a second run on the same checkpoint is refused
    while the first is alive."""
    best, ck = tmp_path / "best.npz", tmp_path / "ck.npz"
    shutil.copy(trained / "best.npz", best)
    before = best.read_bytes()
    slow = ["--dataset", "fashion-mnist", "--train-subset", "20000", "--batch-size", "4",
            "--epochs", "5", "--save", str(best), "--checkpoint", str(ck)]
    proc = start(*slow, env=data_env)
    seen = wait_for(proc, "checkpoint:")
    second = fast("--checkpoint", str(ck), env=data_env)
    one_line_error(second, f"--checkpoint {ck}: another running gpunet-train (pid {proc.pid})")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    text = "".join(seen) + out + err
    assert proc.returncode == 130, text
    assert "Traceback" not in err and "--resume" not in text
    assert "test accuracy" not in text
    assert best.read_bytes() == before
    assert not ck.exists()
    assert gn.load_model(best, device="cpu").num_params > 0


def namespace_run(mount_opts: str, script: str, tmp_path, env: dict
                  ) -> subprocess.CompletedProcess:
    """Run `script` (sh) with a fresh tmpfs mounted at $M, in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a tmpfs")
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", str(tmp_path)],
                           capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    return subprocess.run(["unshare", "-rm", "sh", "-c",
                           f'mount -t tmpfs -o {mount_opts} tmpfs "$M" && {script}'],
                          capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, **env, "M": str(mnt), "PY": sys.executable,
                               "T": SCRIPT[1], "PYTHONPATH": str(REPO)})


def test_read_only_filesystem_is_exit_2_before_training(tmp_path, data_env):
    proc = namespace_run("ro", f'"$PY" "$T" {" ".join(FAST)} --checkpoint "$M/ck.npz"',
                         tmp_path, data_env)
    one_line_error(proc, f"--checkpoint {tmp_path}/mnt/ck.npz: cannot write there: "
                         "Read-only file system")


def test_full_disk_is_exit_2_before_training(tmp_path, data_env):
    proc = namespace_run("size=1m", f'"$PY" "$T" {" ".join(FAST)} --checkpoint "$M/ck.npz"',
                         tmp_path, data_env)
    one_line_error(proc, "--checkpoint: not enough free space in")


def test_disk_filling_up_mid_run_keeps_the_last_complete_checkpoint(tmp_path, data_env):
    """Room for the first checkpoint but not for the second beside it."""
    check = ("import sys, os; from gpunet import serialization as s; "
             "print('NEXT', s.read_npz(sys.argv[1])[1]['next_epoch'], "
             "sorted(os.listdir(os.path.dirname(sys.argv[1]))))")
    script = (f'"$PY" "$T" {" ".join(FAST)} --epochs 3 --checkpoint "$M/ck.npz"; '
              f'echo "RC $?"; "$PY" -c "{check}" "$M/ck.npz"')
    proc = namespace_run("size=7800k", script, tmp_path, data_env)
    assert "RC 2" in proc.stdout, proc.stdout + proc.stderr
    assert f"--checkpoint {tmp_path}/mnt/ck.npz: cannot write it: No space left on device" \
        in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "NEXT 1 ['ck.npz']" in proc.stdout, proc.stdout  # epoch 1's file, no temp file

