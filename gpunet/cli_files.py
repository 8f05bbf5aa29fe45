"""The training command's files and signals: --resume validated whole and every output path
checked before training starts, one live writer per output file, SIGTERM handled as Ctrl-C."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from gpunet.serialization import WriteError, check_writable, write_atomic
from gpunet.training.checkpoint import read_checkpoint

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the unique default path still holds
    fcntl = None  # type: ignore[assignment]


LOG_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "images_per_second")


class UsageError(Exception):
    """A problem the user can fix: reported as one line on stderr, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a `UsageError` (one line, exit 2), not its own exit."""

    def error(self, message: str) -> None:
        raise UsageError(message)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that `fit` stops as on Ctrl-C."""


class Signals:
    """Within this block SIGTERM raises `Terminated`; `exit_code` is 143 after SIGTERM, else
    130 (Ctrl-C). The previous handler is put back on exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise Terminated(f"received signal {signal.Signals(signum).name}")

    def __enter__(self) -> Signals:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave SIGTERM alone
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @property
    def exit_code(self) -> int:
        return 128 + (self.received or signal.SIGINT)

    @property
    def name(self) -> str:
        return "SIGTERM" if self.received == signal.SIGTERM else "Ctrl-C"


def default_checkpoint() -> str:
    """runs/checkpoint-<date>-<time>-<pid>.npz: unique per run, so runs never share one."""
    return f"runs/checkpoint-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.npz"


def check_outputs(outputs: list[tuple[str, str | None, int]]) -> None:
    """(option, path, bytes it will need) for each output: distinct, writable, room for them.

    Raises `UsageError` naming the option the user typed."""
    given = [(opt, Path(path), size) for opt, path, size in outputs if path]
    seen: dict[Path, str] = {}
    for opt, path, _ in given:
        key = path.expanduser().resolve()
        if key in seen:
            raise UsageError(f"{opt} and {seen[key]} name the same file {path}; each output "
                             "needs its own")
        seen[key] = opt
    need: dict[int, tuple[int, Path, list[str]]] = {}
    for opt, path, size in given:
        try:
            check_writable(path)
        except WriteError as exc:
            raise UsageError(f"{opt} {path}: cannot write there: {exc.reason}") from exc
        device = path.parent.stat().st_dev
        total, folder, opts = need.get(device, (0, path.parent, []))
        need[device] = (total + size, folder, [*opts, opt])
    for total, folder, opts in need.values():
        free = shutil.disk_usage(folder).free
        if free < total:
            raise UsageError(f"{' and '.join(opts)}: not enough free space in {folder} "
                             f"({free / 1e6:.1f} MB free, about {total / 1e6:.1f} MB needed)")


class OutputLocks:
    """Advisory locks (`.<name>.lock` beside each file) held for the whole run: a second live
    run writing the same checkpoint or model file is refused instead of overwriting it."""

    def __init__(self) -> None:
        self._held: list[tuple[Path, int]] = []

    def acquire(self, option: str, path: str | os.PathLike) -> None:
        if fcntl is None:
            return
        path = Path(path)
        lock = path.parent / f".{path.name}.lock"
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise UsageError(f"{option} {path}: another running gpunet-train (pid {owner}) "
                                 f"is writing this file; give this run another {option}") from None
            try:  # the holder may have removed the lock file just before we locked it
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held.append((lock, fd))

    def release(self) -> None:
        for lock, fd in reversed(self._held):
            lock.unlink(missing_ok=True)
            os.close(fd)
        self._held.clear()

    def __enter__(self) -> OutputLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# options whose change between a run and its resume would silently change what is trained on
RUN_OPTIONS = ("dataset", "train_subset", "val_split", "seed", "monitor", "weight_decay",
               "augment")


def _check_resume(args: argparse.Namespace, model: Any, callbacks: list[Any]) -> None:
    """The whole checkpoint, validated before anything trains or is written."""
    try:
        ck = read_checkpoint(args.resume, model, callbacks)
    except ValueError as exc:
        raise UsageError(f"--resume: {exc}") from exc
    done = ck.meta["next_epoch"]
    if done >= args.epochs:
        raise UsageError(f"--resume {args.resume}: the checkpoint has finished {done} epochs, so "
                         f"--epochs {args.epochs} leaves nothing to train; pass --epochs "
                         f"{done + 1} or more")
    saved = ck.meta.get("run")
    if not isinstance(saved, dict):
        return  # written by fit(checkpoint=...) rather than this command
    for name in RUN_OPTIONS:
        if name in saved and saved[name] != getattr(args, name):
            option = "--" + name.replace("_", "-")
            raise UsageError(f"--resume {args.resume}: this run's {option} "
                             f"{getattr(args, name)!r} differs from the checkpoint's "
                             f"{saved[name]!r}; resume with the same {option}, or start afresh")


def prepare_outputs(args: argparse.Namespace, model: Any, callbacks: list[Any],
                     locks: OutputLocks, writer: bool = True) -> str:
    """Validate --resume, check every output path and lock the files this run writes (only
    the writer, rank 0 of a distributed run, writes; every rank validates --resume).

    Returns the checkpoint path: --checkpoint, else the resumed file, else a unique new one."""
    if args.resume:
        _check_resume(args, model, callbacks)
    checkpoint = args.checkpoint or args.resume or default_checkpoint()
    if not writer:
        model.run_info = {name: getattr(args, name) for name in RUN_OPTIONS}
        return checkpoint
    size = 4 * model.num_params + 64 * 1024
    save = args.save
    if save and "{" in save:  # a template: check the folder of its first name
        save = callbacks[-1].path_for(0, dict.fromkeys(LOG_KEYS, 0.0))
    outputs = [("--checkpoint", checkpoint, 6 * size), ("--save", save, size),
               ("--json", args.json, 4096), ("--plot", args.plot, 1 << 20)]
    if args.resume:  # the resumed file is only ever replaced by the next checkpoint
        resumed = Path(args.resume).resolve()
        for option, path, _ in outputs[1:]:
            if path and Path(path).resolve() == resumed:
                raise UsageError(f"{option} {path} would overwrite the --resume checkpoint")
    check_outputs(outputs)
    locks.acquire("--checkpoint", checkpoint)
    if args.save and save == args.save:
        locks.acquire("--save", args.save)
    if args.resume and Path(checkpoint).resolve() != Path(args.resume).resolve():
        copy_file(args.resume, checkpoint)  # so an interrupt's "--resume <checkpoint>" holds
    model.run_info = {name: getattr(args, name) for name in RUN_OPTIONS}
    return checkpoint


def write_text(option: str, path: str | os.PathLike, text: str) -> None:
    """Atomically write a text output; a failure names the option."""
    try:
        write_atomic(path, lambda f: f.write(text.encode()))
    except WriteError as exc:
        raise UsageError(f"{option} {path}: cannot write it: {exc.reason}") from exc


def write_plot(option: str, path: str | os.PathLike, history: dict[str, list[float]]) -> None:
    """The loss/accuracy PNG, drawn to a temporary file and renamed into place."""
    from gpunet.plot import plot_history

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        plot_history(history, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write it: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def copy_file(source: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Atomic copy (the new --checkpoint of a resumed run starts as the resumed file)."""
    with open(source, "rb") as src:
        write_atomic(dest, lambda f: shutil.copyfileobj(src, f))
