"""`gpunet-train` / `scripts/train_mnist.py`: train, validate, stop early, report, keep the best.

Exit codes: 0 done; 2 a user error (bad arguments, missing or damaged data or checkpoint, an
output path that cannot be written, an unusable GPU), one line on stderr; 3 training diverged;
130 Ctrl-C and 143 SIGTERM (the checkpoint of the last finished epoch is kept).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import gpunet as gn
from gpunet import backend
from gpunet import distributed as dist
from gpunet.cli_data import load_data
from gpunet.cli_files import (
    LOG_KEYS,
    OutputLocks,
    Parser,
    Signals,
    UsageError,
    prepare_outputs,
    write_plot,
    write_text,
)
from gpunet.serialization import WriteError
from gpunet.training.shards import resolve_workers


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="gpunet-train", description="Train an MLP or CNN on MNIST/Fashion-MNIST.")
    a = p.add_argument
    a("--device", choices=backend.DEVICES, default="auto")
    a("--model", choices=("mlp", "cnn"), default="mlp")
    a("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    a("--data-dir", help="folder holding the four IDX files (default: $GPUNET_DATA/<dataset>, "
                         "then ~/.cache/gpunet/<dataset>, then download)")
    a("--train-subset", default="auto",
      help="'auto' (MNIST: the full 60k if present or downloadable, else the bundled 5k), "
           "'full', '5k' (MNIST's bundled 5,000 real digits) or a number N "
           "(the training set is shuffled with --seed first)")
    a("--epochs", type=_positive_int, default=60, help="at most this many (early stopping)")
    a("--batch-size", type=_positive_int, default=64)
    a("--optimizer", choices=("sgd", "momentum", "adagrad", "rmsprop", "adam"), default="adam")
    a("--lr", type=_positive_float, default=None, help="learning rate (default: per optimizer)")
    a("--val-split", type=float, default=0.1, help="last fraction of training data held out")
    a("--patience", type=int, default=10, help="early-stopping patience in epochs")
    a("--monitor", choices=("val_accuracy", "val_loss"), default="val_accuracy",
      help="what early stopping, the LR schedule and --save watch (on the training set "
           "when --val-split is 0)")
    a("--reduce-lr", type=int, default=3, metavar="EPOCHS",
      help="halve the learning rate after this many epochs without improvement (0: never)")
    a("--workers", type=_workers, default="auto",
      help="CPU threads that share each batch, each with a single-threaded BLAS (default "
           "'auto': for the cnn as many as BLAS threads, at most one per 32 images of a batch; "
           "1 for the mlp, which is faster with a multi-threaded BLAS); ignored on the GPU")
    a("--seed", type=int, default=0)
    a("--save", help="write the best model here (.npz; {epoch} and log keys such as "
                     "{val_accuracy:.4f} are filled in, one file per improving epoch)")
    a("--checkpoint", default=None,
      help="resumable checkpoint written after each epoch (default: the --resume file, else a "
           "new runs/checkpoint-<date>-<time>-<pid>.npz); Ctrl-C and SIGTERM keep it")
    a("--resume", help="continue from a checkpoint written by --checkpoint (with the same "
                       "data options; --lr cannot be changed)")
    a("--augment", action=argparse.BooleanOptionalAction, default=None,
      help="random shifts (±2 px) and rotations (±10°), on the device (default: on for mnist, "
           "whose training set is small, off for fashion-mnist)")
    a("--dropout", type=float, default=0.2, help="dropout rate before the dense layers")
    a("--weight-decay", type=float, default=0.0, help="L2 regularisation strength")
    a("--plot", help="PNG of the loss and accuracy curves (needs matplotlib)")
    a("--json", help="write the results as JSON here")
    a("--verbose", type=int, default=1, choices=(0, 1))
    a("--distributed", nargs="?", const="auto", choices=("auto", "mpi", "nccl", "off"),
      help="data-parallel over the ranks of mpiexec/srun; --batch-size is then the global "
           "batch (default: on, backend auto, when the launcher started more than one rank)")
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {text}")
    return int(text)


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.val_split < 1:
        raise UsageError(f"--val-split must be in [0, 1), got {args.val_split}")
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not math.isfinite(args.weight_decay) or args.weight_decay < 0 or args.patience < 0 \
            or args.reduce_lr < 0:
        raise UsageError("--weight-decay, --patience and --reduce-lr must be finite and >= 0")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise UsageError('--plot needs matplotlib: pip install "gpunet[plot]"') from exc
    if args.resume:
        if not Path(args.resume).is_file():
            raise UsageError(f"--resume: no such checkpoint {args.resume}")
        if args.lr is not None:
            raise UsageError("--lr cannot be combined with --resume: the checkpoint carries the "
                             "learning rate (and its --reduce-lr state) so that the run continues "
                             "exactly; start a new run to change it")
    if args.save:
        try:
            gn.callbacks.ModelCheckpoint(args.save).path_for(0, dict.fromkeys(LOG_KEYS, 0.0))
        except ValueError as exc:
            raise UsageError(f"--save {args.save}: {str(exc).split(': ', 1)[1]}") from exc


def make_model(args: argparse.Namespace) -> gn.Sequential:
    from gpunet import reference_models

    model = reference_models.MODELS[args.model](dropout=args.dropout, device=args.device)
    opt_kwargs: dict[str, Any] = {"weight_decay": args.weight_decay}
    if args.lr is not None:
        opt_kwargs["lr"] = args.lr
    opt = gn.optimizers.get(args.optimizer, **opt_kwargs)
    model.compile(loss=gn.losses.CrossEntropy(), optimizer=opt, metrics=["accuracy"])
    return model


def make_callbacks(args: argparse.Namespace, monitor: str) -> list[Any]:
    nan = gn.callbacks.TerminateOnNaN()
    callbacks: list[Any] = [
        gn.callbacks.EarlyStopping(monitor=monitor, patience=args.patience,
                                   restore_best_weights=True),
        nan,
    ]
    if args.reduce_lr:
        callbacks.append(gn.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                        patience=args.reduce_lr, min_lr=1e-5))
    if args.save:
        callbacks.append(gn.callbacks.ModelCheckpoint(args.save, monitor=monitor))
    return callbacks


def run(args: argparse.Namespace, signals: Signals | None = None) -> dict[str, Any]:
    _check(args)
    signals = signals or Signals()
    comm = _communicator(args.distributed)  # DIST: before anything touches a GPU
    gn.seed(args.seed)
    layout = "image" if args.model == "cnn" else "flat"
    data = load_data(args.dataset, args.data_dir, args.train_subset, layout, args.seed)
    n_val = int(len(data.x_train) * args.val_split)
    if args.val_split and not 0 < n_val < len(data.x_train):
        raise UsageError(f"--val-split {args.val_split} of {len(data.x_train)} training images "
                         f"leaves {n_val} for validation; use more data or --val-split 0")
    with warnings.catch_warnings():  # the fallback is reported on the device line below
        warnings.filterwarnings("ignore", message="gpunet: no usable GPU")
        model = make_model(args)
    say = print if args.verbose and dist.is_writer(comm) else (lambda *a, **k: None)  # DIST
    say(f"data: {data.description}")
    why = f" (no usable GPU: {backend.gpu_status()[1]})" \
        if args.device == "auto" and model.device == "cpu" else ""
    workers = args.workers if model.device == "cpu" else "auto"
    n_workers = resolve_workers(model, workers, "--workers", args.batch_size)
    threads = f", {n_workers} threads share each batch" if n_workers > 1 else ""
    say(f"device: {model.device}{why}{threads}   model: {args.model} "
        f"({model.num_params:,} parameters)")
    if comm is not None:  # DIST
        say(f"distributed: {comm.size} ranks ({comm.backend}), global batch {args.batch_size}")
    monitor = args.monitor if args.val_split > 0 else args.monitor.removeprefix("val_")
    if args.augment is None:
        args.augment = args.dataset == "mnist"
    callbacks = make_callbacks(args, monitor)
    augment = None
    if args.augment:
        from gpunet.augment import RandomShiftRotate

        augment = RandomShiftRotate(max_shift=2, max_degrees=10)
    with OutputLocks() as locks:
        checkpoint = prepare_outputs(args, model, callbacks, locks, dist.is_writer(comm))
        say(f"checkpoint: {checkpoint}")
        t0 = time.perf_counter()
        try:
            history = model.fit(data.x_train, data.y_train, epochs=args.epochs,
                                batch_size=args.batch_size, validation_split=args.val_split,
                                callbacks=callbacks, verbose=args.verbose, augment=augment,
                                checkpoint=checkpoint, resume=args.resume, workers=workers,
                                distributed=comm)
        except WriteError as exc:  # the disk filled up, or the folder went away, mid-run
            option = "--checkpoint" if exc.path == os.fspath(checkpoint) else "--save"
            raise UsageError(f"{option} {exc.path}: cannot write it: {exc.reason} (the last "
                             "complete file is kept)") from exc
        seconds = time.perf_counter() - t0
        return _finish(args, model, data, history, monitor, seconds, checkpoint, signals,
                       workers, say, comm)


def _finish(args: argparse.Namespace, model: gn.Sequential, data: Any, history: Any,
            monitor: str, seconds: float, checkpoint: str, signals: Signals, workers: Any,
            say: Any, comm: Any) -> dict[str, Any]:
    """After fit: save (one writer), evaluate (every rank), report; say truly what was kept."""
    h = history.history
    interrupted = history.stop_reason.startswith("interrupted")
    diverged = history.stop_reason.startswith("TerminateOnNaN")
    if interrupted and not h.get("seconds"):
        say(f"interrupted ({signals.name}) before the first epoch ended: nothing was saved"
            + (f"; {args.save} was left as it was" if args.save and "{" not in args.save
               else ""))
        return {"stop_reason": history.stop_reason, "diverged": False}
    if args.save and "{" not in args.save and not diverged and dist.is_writer(comm):
        _save(model, args.save)  # the best weights (EarlyStopping restored them)
    test = model.evaluate(data.x_test, data.y_test, workers=workers, distributed=comm)
    monitored = h.get(monitor, [])
    pick = np.argmax if monitor.endswith("accuracy") else np.argmin
    best = int(pick(monitored)) if monitored else -1
    run_seconds = h.get("seconds", [])
    result = {
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "best_epoch": best + 1, "epochs_run": len(run_seconds),
        "seconds_per_epoch": float(np.median(run_seconds)) if run_seconds else 0.0,
        "images_per_second": float(np.median(h.get("images_per_second", [0.0]))),
        "total_seconds": seconds, "device": model.device, "model": args.model,
        "dataset": args.dataset, "data": data.description, "stop_reason": history.stop_reason,
        "diverged": diverged, "checkpoint": checkpoint,
    }
    if comm is not None:  # DIST
        result["ranks"] = comm.size
    if not dist.is_writer(comm):  # DIST: one writer
        return result
    if args.json:
        write_text("--json", args.json, json.dumps(result, indent=2) + "\n")
    if args.plot:
        write_plot("--plot", args.plot, h)
    if interrupted and Path(checkpoint).is_file():
        say(f"interrupted ({signals.name}): the best weights so far were restored; continue "
            f"with --resume {checkpoint}")
    say(f"test accuracy {100 * test['accuracy']:.2f}%   best epoch {best + 1} of "
        f"{len(run_seconds)}   {result['seconds_per_epoch']:.2f} s/epoch   "
        f"{result['images_per_second']:,.0f} images/s   device {model.device}")
    return result


def _save(model: gn.Sequential, path: str) -> None:
    try:
        model.save(path)
    except WriteError as exc:
        raise UsageError(f"--save {path}: cannot write it: {exc.reason}") from exc


def _error(message: str) -> None:
    message = " ".join(message.split())  # one line, however long the explanation
    print(f"gpunet-train: error: {message}", file=sys.stderr)


def _communicator(choice: str | None) -> dist.Communicator | None:
    """--distributed: None (the default) turns it on when the launcher started >1 ranks."""
    if choice is None:
        choice = "auto" if dist.launch.launched_size() > 1 else "off"
    return None if choice == "off" else dist.init(choice)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 a user error (one line on stderr); 3 training diverged;
    130 interrupted by Ctrl-C, 143 by SIGTERM (the checkpoint of the last finished epoch kept).
    Under mpiexec/srun an error on one rank stops every rank (MPI Abort)."""
    with Signals() as signals:
        try:
            with dist.abort_on_error(what="gpunet-train"):  # DIST: one rank's error stops all
                result = run(build_parser().parse_args(argv), signals)
        except KeyboardInterrupt:  # before or after training (fit handles it during)
            print(f"gpunet-train: interrupted ({signals.name})", file=sys.stderr)
            return signals.exit_code
        except WriteError as exc:  # a checkpoint or model write failed during training
            _error(str(exc))
            return 2
        except (UsageError, gn.DeviceError, FileNotFoundError, ValueError,
                FloatingPointError) as exc:
            _error(str(exc))
            return 2
    if result["stop_reason"].startswith("interrupted"):
        return signals.exit_code
    if result["diverged"]:
        _error(f"training diverged: {result['stop_reason']} Lower --lr or check the data; no "
               "model was saved from the diverged epochs")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
