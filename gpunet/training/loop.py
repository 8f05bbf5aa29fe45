"""`fit`: a thin epoch loop around the model's `train_step`, with one CallbackList.

Data flow: host arrays → `batches` (shuffled views on the CPU, double-buffered copies to the
GPU) → `train_step(xb, yb)` of the model or of its CPU `Shards` → `Tally` (loss and accuracy
summed on the device, read every `log_every` batches, every batch on the CPU) → the callbacks
(the user's, then History, then ProgressBar) → a resumable checkpoint after each epoch. A GPU
step therefore needs no host↔device synchronisation.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

from gpunet import backend
from gpunet import distributed as dist
from gpunet.callbacks import CallbackList, History, ProgressBar
from gpunet.checks import check_bool, check_int, check_positive_int
from gpunet.serialization import check_writable
from gpunet.training.batches import make_batches
from gpunet.training.checkpoint import load_checkpoint, save_checkpoint
from gpunet.training.cuda_graph import graphed
from gpunet.training.data import FitData, check_batch_size, fit_data
from gpunet.training.evaluate import evaluate_arrays
from gpunet.training.metrics import Tally
from gpunet.training.shards import resolve_workers, sharded


@dataclass
class Run:
    """What one `fit` call fixes before its first epoch."""

    model: Any
    data: FitData
    callbacks: CallbackList
    batches: Any
    epochs: int
    batch_size: int
    shuffle: bool
    augment: Any
    log_every: int  # read the loss every this many batches (1 on the CPU alone)
    checkpoint: str | os.PathLike | None
    verbose: int
    workers: int
    history: History
    ranks: dist.Ranks  # this rank's share of each batch; the identity for one process
    runner: Any = None  # runs the steps: the model, or Shards of it (set inside `fit`)
    saved_epochs: int = 0  # the last epoch whose checkpoint this fit wrote (0: none yet)


@dist.guarded("fit")  # with >1 ranks an error on one rank ends them all (no hang)
def fit(model: Any, x: Any, y: Any, epochs: int = 1, batch_size: int = 32,
        validation_split: float = 0.0, validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True, callbacks: list[Any] | None = None, verbose: int = 1,
        augment: Any = None, checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, log_every: int = 20,
        workers: int | str = "auto", initial_epoch: int = 0,
        distributed: Any = None, cuda_graph: bool = False) -> History:
    """Train `model` (compiled) on host arrays x, y; return its History (also `model.history`).

    validation_split takes the LAST fraction of (x, y), before any shuffling (as Keras does).
    `augment(xb, xp)` may transform each training batch on the device. `checkpoint`: write a
    resumable checkpoint there after every epoch; `resume`: continue from one (it says where);
    else the first epoch is `initial_epoch` (as in Keras: callbacks whose state was restored
    with `set_state` continue from there). `workers` (CPU): threads that share each batch
    ("auto": see `gpunet.training.shards`). A NaN/inf loss stops training and raises
    FloatingPointError, unless a callback handles it (TerminateOnNaN). `distributed`: a
    communicator (`gpunet.distributed.init()`) to train data-parallel on its ranks, batch_size
    then being the global batch (see `gpunet.distributed`). `cuda_graph` (GPU, one process):
    run each full batch's forward, loss and backward as one CUDA graph launch
    (`cuda_graph.py`; off by default until measured on a GPU).
    """
    if model.optimizer is None or model.loss is None:
        raise RuntimeError("fit: call model.compile(loss=..., optimizer=...) first")
    cuda_graph = check_bool("fit", "cuda_graph", cuda_graph)  # gpuspeed
    run = _plan(model, x, y, epochs, batch_size, validation_split, validation_data, shuffle,
                callbacks, verbose, augment, checkpoint, log_every, workers, distributed)
    start = _begin(run, resume, check_int("fit", "initial_epoch", initial_epoch))
    cuda_graph = one_process_graph(cuda_graph, run.ranks)
    with sharded(model, run.workers) as runner, \
            run.ranks.stepping(model, graphed(model, runner, cuda_graph, run.batch_size),
                               augment) as run.runner:
        _run_epochs(run, start)
    run.callbacks.on_train_end({})
    if model.nonfinite and not run.callbacks.handles_nonfinite:  # alike on every rank
        raise dist.on_every_rank(FloatingPointError(model.nonfinite))
    return run.history


def one_process_graph(cuda_graph: bool, ranks: dist.Ranks) -> bool:
    """fit(cuda_graph=True) captures one process's step; with several ranks it is ignored,
    with a warning saying so."""
    if cuda_graph and not ranks.single:
        warnings.warn("fit(cuda_graph=True) runs in one process only; ignored with "
                      f"{ranks.comm.size} ranks", RuntimeWarning, stacklevel=3)
        return False
    return cuda_graph


def _plan(model: Any, x: Any, y: Any, epochs: Any, batch_size: Any, validation_split: float,
          validation_data: Any, shuffle: bool, callbacks: Any, verbose: int, augment: Any,
          checkpoint: Any, log_every: Any, workers: Any, comm: Any) -> Run:
    """Check fit's arguments and data; build its batches and its one CallbackList (with
    ranks: this rank's share of each batch; callbacks that write files and progress on rank 0
    only)."""
    epochs = check_positive_int("fit", "epochs", epochs)
    batch_size = check_batch_size("fit", batch_size)
    log_every = check_positive_int("fit", "log_every", log_every)
    n_workers = resolve_workers(model, workers, "fit", batch_size)
    user = CallbackList(callbacks, owner="fit").callbacks
    data = fit_data(model, x, y, validation_split, validation_data)
    ranks = dist.Ranks(comm, len(data.x), batch_size)
    if checkpoint is not None and ranks.writer:  # before training, not after the first epoch
        check_writable(checkpoint)
    verbose = verbose if ranks.writer else 0
    steps = math.ceil(len(data.x) / batch_size)
    history = History()
    cbs = CallbackList([*ranks.callbacks(user), history, ProgressBar(verbose, epochs, steps)])
    batches = make_batches(data.x, data.y, ranks.local_batch_size, model.xp)
    every = 1 if model.on_cpu and ranks.single else log_every
    return Run(model, data, cbs, batches, epochs, batch_size, bool(shuffle), augment, every,
               checkpoint, verbose, n_workers, history, ranks)


def _begin(run: Run, resume: str | os.PathLike | None, start: int) -> int:
    """Reset the model's stop state, resume if asked, start the callbacks; the first epoch."""
    model = run.model
    model.relink_params()
    model.stop_training, model.stop_reason, model.nonfinite = False, "", None
    model.history = run.history
    run.callbacks.set_model(model)
    if resume is not None:
        meta = load_checkpoint(resume, model, run.callbacks)
        model.optimizer.to(model.xp)
        start = int(meta["next_epoch"])
    run.ranks.start(model, run.data, batch_size=run.batch_size, epochs=run.epochs,
                    start_epoch=start, shuffle=run.shuffle)
    run.callbacks.on_train_begin({})
    return start


def _run_epochs(run: Run, start: int) -> None:
    """The epoch loop: train, validate, callbacks, checkpoint; Ctrl-C ends it cleanly."""
    model = run.model
    epoch = start
    try:
        for epoch in range(start, run.epochs):
            logs = _train_epoch(run, epoch)
            if run.data.xv is not None:
                val = run.ranks.evaluate(evaluate_arrays, run.runner, run.data.xv,
                                         run.data.yv, max(run.batch_size, 1024))
                logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            run.callbacks.on_epoch_end(epoch, logs)
            run.ranks.check_in_sync(model, f"fit, epoch {epoch + 1}")
            if run.checkpoint is not None and run.ranks.writer:
                save_checkpoint(run.checkpoint, model, epoch + 1, run.callbacks)
                run.saved_epochs = epoch + 1
            if model.stop_training:
                model.stop_reason = model.stop_reason or model.nonfinite or \
                    "stopped by a callback"
                break
    except KeyboardInterrupt:
        if not run.ranks.single:  # ranks stop at different batches: end them all
            raise
        model.stop_reason = f"interrupted during epoch {epoch + 1}"
        if run.verbose:
            done = run.saved_epochs  # promise only a checkpoint this fit wrote
            where = f"; resumable checkpoint (epoch {done}) at {run.checkpoint}" if done else ""
            print(f"\ntraining interrupted during epoch {epoch + 1}{where}", flush=True)


def _train_epoch(run: Run, epoch: int) -> dict[str, float]:
    """One pass over the shuffled training data; the epoch's logs."""
    model = run.model
    model.optimizer.on_epoch_begin(epoch)
    run.callbacks.on_epoch_begin(epoch, {})
    order = backend.rng().permutation(len(run.data.x)) if run.shuffle else None
    order = run.ranks.local_order(order)  # with ranks: this rank's share of each batch
    if not model.on_cpu:  # GPU dropout and augmentation draw from CuPy's generator: seed it
        # from the host one, whose state checkpoints keep, so that a resumed run replays it
        model.xp.random.seed(run.ranks.seed())
    t0 = time.perf_counter()
    tally = Tally(model.xp, accuracy="accuracy" in model.metrics)
    _train_batches(run, epoch, tally, run.batches.epoch(order))
    logs = run.ranks.logs(tally)  # reading the sums waits for the device
    seconds = time.perf_counter() - t0
    note_nonfinite(model, logs["loss"], epoch, scope=run.ranks.scope)
    logs.update(lr=float(model.optimizer.lr), seconds=seconds,
                images_per_second=len(run.data.x) / seconds)
    return logs


def _train_batches(run: Run, epoch: int, tally: Tally, batches: Any) -> None:
    """The hot loop: one `train_step` per batch; the loss is read (and the callbacks told)
    every `log_every` batches, every batch on the CPU alone, where reading is free (with
    ranks, on the CPU, also at once when a step's loss is not finite: on every rank alike)."""
    model, step, augment, xp = run.model, run.runner.train_step, run.augment, run.model.xp
    on_batch_end, draws = run.callbacks.on_batch_end, run.ranks.draws
    pending = 0
    for b, (xb, yb) in enumerate(batches):
        with draws():  # with ranks: this rank's own dropout and augmentation draws
            if augment is not None:
                xb = augment(xb, xp)
            out, loss = step(xb, yb)
        tally.add(out, yb, loss)
        pending += 1
        if pending == run.log_every or (model.on_cpu and not math.isfinite(loss)):
            pending = 0
            logs = {"loss": run.ranks.mean_loss(tally)}
            note_nonfinite(model, logs["loss"], epoch, b, run.ranks.scope)
            on_batch_end(b, logs)
            if model.stop_training:
                return


def note_nonfinite(model: Any, loss: float, epoch: int, batch: int | None = None,
                   scope: str = "") -> None:
    """The one place a NaN/inf training loss is noticed: the first one is described in
    `model.nonfinite` and training stops after this epoch (callbacks see the loss too).
    `scope`: where the loss was summed (" on some rank" with ranks)."""
    if math.isfinite(loss) or model.nonfinite is not None:
        return
    where = f"epoch {epoch + 1}" if batch is None else f"epoch {epoch + 1}, batch {batch + 1}"
    skipped = "; that batch was not trained on" if model.on_cpu and batch is not None else ""
    model.nonfinite = (f"the loss became {loss}{scope} in {where} (training diverged: lower the "
                       f"learning rate or check the data){skipped}")
    model.stop_training = True
