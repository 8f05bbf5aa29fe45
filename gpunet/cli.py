"""`gpunet-train` / `scripts/train_mnist.py`: train, validate, stop early, report, keep the best.

Bad arguments, missing data or an unusable GPU end with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
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
from gpunet.training.shards import resolve_workers


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


class UsageError(Exception):
    """A problem the user can fix: reported as one line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gpunet-train", description="Train an MLP or CNN on MNIST/Fashion-MNIST.")
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
    a("--save", help="write the best model here (.npz)")
    a("--checkpoint", default="runs/checkpoint.npz",
      help="resumable checkpoint written after each epoch and on Ctrl-C")
    a("--resume", help="continue from a checkpoint written by --checkpoint")
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
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.val_split < 1:
        raise UsageError(f"--val-split must be in [0, 1), got {args.val_split}")
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.weight_decay < 0 or args.patience < 0 or args.reduce_lr < 0:
        raise UsageError("--weight-decay, --patience and --reduce-lr must be >= 0")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise UsageError('--plot needs matplotlib: pip install "gpunet[plot]"') from exc
    if args.resume and not Path(args.resume).is_file():
        raise UsageError(f"--resume: no such checkpoint {args.resume}")


def make_model(args: argparse.Namespace) -> gn.Sequential:
    from gpunet import reference_models

    model = reference_models.MODELS[args.model](dropout=args.dropout, device=args.device)
    opt_kwargs: dict[str, Any] = {"weight_decay": args.weight_decay}
    if args.lr is not None:
        opt_kwargs["lr"] = args.lr
    opt = gn.optimizers.get(args.optimizer, **opt_kwargs)
    model.compile(loss=gn.losses.CrossEntropy(), optimizer=opt, metrics=["accuracy"])
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    _check(args)
    comm = _communicator(args.distributed)  # DIST: before anything touches a GPU
    gn.seed(args.seed)
    layout = "image" if args.model == "cnn" else "flat"
    data = load_data(args.dataset, args.data_dir, args.train_subset, layout, args.seed)
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
    callbacks: list[Any] = [
        gn.callbacks.EarlyStopping(monitor=monitor, patience=args.patience,
                                   restore_best_weights=True),
        gn.callbacks.TerminateOnNaN(),
    ]
    if args.reduce_lr:
        callbacks.append(gn.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                        patience=args.reduce_lr, min_lr=1e-5))
    if args.save:
        callbacks.append(gn.callbacks.ModelCheckpoint(args.save, monitor=monitor))
    augment = None
    if args.augment is None:
        args.augment = args.dataset == "mnist"
    if args.augment:
        from gpunet.augment import RandomShiftRotate

        augment = RandomShiftRotate(max_shift=2, max_degrees=10)
    t0 = time.perf_counter()
    history = model.fit(data.x_train, data.y_train, epochs=args.epochs,
                        batch_size=args.batch_size, validation_split=args.val_split,
                        callbacks=callbacks, verbose=args.verbose, augment=augment,
                        checkpoint=args.resume or args.checkpoint, resume=args.resume,
                        workers=workers, distributed=comm)
    seconds = time.perf_counter() - t0
    if args.save and dist.is_writer(comm):  # DIST: one writer
        model.save(args.save)
    test = model.evaluate(data.x_test, data.y_test, workers=workers, distributed=comm)
    h = history.history
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
    }
    if comm is not None:  # DIST
        result["ranks"] = comm.size
    if not dist.is_writer(comm):  # DIST: one writer
        return result
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        from gpunet.plot import plot_history

        plot_history(h, args.plot)
    if history.stop_reason.startswith("interrupted"):
        say(f"interrupted: the best weights so far were restored; continue with --resume "
            f"{args.resume or args.checkpoint}")
    say(f"test accuracy {100 * test['accuracy']:.2f}%   best epoch {best + 1} of "
        f"{len(run_seconds)}   {result['seconds_per_epoch']:.2f} s/epoch   "
        f"{result['images_per_second']:,.0f} images/s   device {model.device}")
    return result


def _communicator(choice: str | None) -> dist.Communicator | None:
    """--distributed: None (the default) turns it on when the launcher started >1 ranks."""
    if choice is None:
        choice = "auto" if dist.launch.launched_size() > 1 else "off"
    return None if choice == "off" else dist.init(choice)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 2 a user error, 130 interrupted by Ctrl-C (checkpoint kept)."""
    try:
        with dist.abort_on_error(what="gpunet-train"):  # DIST: one rank's error stops all
            result = run(build_parser().parse_args(argv))
    except (UsageError, gn.DeviceError, FileNotFoundError, ValueError, FloatingPointError) as exc:
        message = " ".join(str(exc).split())  # one line, however long the explanation
        print(f"gpunet-train: error: {message}", file=sys.stderr)
        return 2
    return 130 if result["stop_reason"].startswith("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
