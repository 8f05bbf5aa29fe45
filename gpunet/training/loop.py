"""`fit`: the training loop. One step is forward, loss, backward, one optimizer update over the
flat parameter buffer. Loss and accuracy accumulate on the device and are read every
`log_every` batches, so a GPU step needs no host↔device synchronisation."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.training import checkpoint as ckpt
from gpunet.training.batches import make_batches
from gpunet.training.data import check_xy, split_validation
from gpunet.training.evaluate import evaluate_arrays
from gpunet.training.progress import Progress
from gpunet.training.shards import Shards, resolve_workers


@dataclass
class History:
    """Per-epoch logs: loss, accuracy, val_loss, val_accuracy, lr, seconds, images_per_second."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    stop_reason: str = ""

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))


def fit(model: Any, x: Any, y: Any, epochs: int = 1, batch_size: int = 32,
        validation_split: float = 0.0, validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True, callbacks: list[Any] | None = None, verbose: int = 1,
        augment: Any = None, checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, log_every: int = 20,
        workers: int | str = "auto") -> History:
    """Train `model` (compiled) on host arrays x, y.

    validation_split takes the LAST fraction of (x, y), before any shuffling (as Keras does).
    `augment(xb, xp)` may transform each training batch on the device. `checkpoint`: write a
    resumable checkpoint there after every epoch and on Ctrl-C; `resume`: continue from one.
    `workers` (CPU): threads that share each batch ("auto": see `gpunet.training.shards`).
    """
    if model.optimizer is None or model.loss is None:
        raise RuntimeError("fit: call model.compile(loss=..., optimizer=...) first")
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("log_every", log_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"fit: {arg} must be a positive int, got {value!r}")
    n_workers = resolve_workers(model, workers, "fit", batch_size)
    n_out = _n_outputs(model)
    x, y = check_xy(x, y, model, n_out, "fit")
    if validation_data is not None:
        xv, yv = check_xy(*validation_data, model, n_out, "fit(validation_data)")
    elif validation_split:
        x, y, xv, yv = split_validation(x, y, validation_split)
    else:
        xv = yv = None
    callbacks = list(callbacks or [])
    xp = model.xp
    model.check_flat()
    model.stop_training = False
    model.stop_reason = ""
    for cb in callbacks:
        cb.set_model(model)
    history = History()
    start_epoch = 0
    if resume is not None:
        meta = ckpt.load_checkpoint(resume, model, callbacks)
        if hasattr(model.optimizer, "to"):
            model.optimizer.to(xp)
        start_epoch = int(meta["next_epoch"])
        history.history = {k: list(v) for k, v in meta["history"].items()}
        history.epoch = list(range(len(next(iter(history.history.values()), []))))
    batches = make_batches(x, y, batch_size, xp)
    progress = Progress(verbose, epochs)
    n_batches = math.ceil(len(x) / batch_size)
    for cb in callbacks:
        cb.on_train_begin({})
    epoch = start_epoch
    shards = Shards.open(model, n_workers)
    try:
        for epoch in range(start_epoch, epochs):
            _set_epoch(model, epoch, callbacks)
            progress.start_epoch(epoch, n_batches)
            order = backend.rng().permutation(len(x)) if shuffle else None
            if model.xp is not np:  # GPU dropout and augmentation draw from CuPy's generator:
                # seed it from the host one, whose state checkpoints keep, so resume replays it
                model.xp.random.seed(int(backend.rng().integers(2**63)))
            t0 = time.perf_counter()
            logs = _train_epoch(model, batches.epoch(order), epoch, callbacks, progress,
                                augment, log_every, shards)
            if model.xp is not np:
                model.xp.cuda.get_current_stream().synchronize()
            seconds = time.perf_counter() - t0
            logs.update(lr=float(model.optimizer.lr), seconds=seconds,
                        images_per_second=len(x) / seconds)
            if xv is not None:
                val = evaluate_arrays(model, xv, yv, max(batch_size, 1024), shards)
                logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            history.append(epoch, logs)
            progress.end_epoch(epoch, logs)
            if checkpoint is not None:
                ckpt.save_checkpoint(checkpoint, model, epoch + 1, callbacks, history.history)
            if model.stop_training:
                history.stop_reason = getattr(model, "stop_reason", "") or "stopped by a callback"
                break
    except KeyboardInterrupt:
        history.stop_reason = f"interrupted during epoch {epoch + 1}"
        if verbose:
            where = f"; resumable checkpoint (epoch {len(history.epoch)}) at {checkpoint}" \
                if checkpoint is not None and history.epoch else ""
            print(f"\ntraining interrupted during epoch {epoch + 1}{where}", flush=True)
    finally:
        if shards is not None:
            shards.close()
    for cb in callbacks:
        cb.on_train_end({})
    nonfinite = getattr(model, "_nonfinite", None)
    if nonfinite and not any(type(cb).__name__ == "TerminateOnNaN" for cb in callbacks):
        raise FloatingPointError(nonfinite)
    return history


def _n_outputs(model: Any) -> int | None:
    shape = model.input_shape
    if shape is None:
        return None
    for layer in model.layers:
        shape = layer.output_shape(shape)
    return shape[0] if len(shape) == 1 else None


def _set_epoch(model: Any, epoch: int, callbacks: list[Any]) -> None:
    if hasattr(model.optimizer, "on_epoch_begin"):
        model.optimizer.on_epoch_begin(epoch)
    for cb in callbacks:
        cb.on_epoch_begin(epoch, {})


def _train_epoch(model: Any, batches: Any, epoch: int, callbacks: list[Any], progress: Progress,
                 augment: Any, log_every: int, shards: Shards | None) -> dict[str, float]:
    xp = model.xp
    loss_fn, opt = model.loss, model.optimizer
    params, grads = [model.flat_params], [model.flat_grads]
    loss_sum = xp.zeros((), dtype=np.float64)
    correct = xp.zeros((), dtype=np.int64)
    seen = pending = 0
    model._nonfinite = None
    for b, (xb, yb) in enumerate(batches):
        if augment is not None:
            xb = augment(xb, xp)
        if shards is None:
            out = model.forward(xb, training=True)
            loss, grad = loss_fn.forward(out, yb)
        else:  # forward, loss and backward, the batch shared between CPU threads
            out, loss = shards.train_step(xb, yb)
        if xp is np and not math.isfinite(float(loss)):  # free on the CPU: stop before the step
            model._nonfinite = (f"the loss became {float(loss)} in epoch {epoch + 1}, batch "
                                f"{b + 1} (training diverged: lower the learning rate or check "
                                "the data); that batch was not trained on")
            model.stop_training = True
            for cb in callbacks:
                cb.on_batch_end(b, {"loss": float(loss)})
            break
        if shards is None:
            model.backward(grad)
        opt.step(params, grads)
        n = len(xb)
        loss_sum += loss * n
        if yb.ndim == 1:
            correct += (out.argmax(axis=1) == yb).sum()
        seen += n
        pending += 1
        if pending == log_every or xp is np:
            logs = {"loss": float(loss_sum) / seen}
            if not math.isfinite(logs["loss"]) and model._nonfinite is None:
                model._nonfinite = (f"the loss became {logs['loss']} in epoch {epoch + 1}, "
                                    f"batch {b + 1} (training diverged: lower the learning rate "
                                    "or check the data)")
                model.stop_training = True
            for cb in callbacks:
                cb.on_batch_end(b, logs)
            progress.update(pending, logs)
            pending = 0
            if model.stop_training:
                break
    logs = {"loss": float(loss_sum) / max(seen, 1)}
    if model.metrics:
        logs["accuracy"] = int(correct) / max(seen, 1)
    if not math.isfinite(logs["loss"]) and model._nonfinite is None:
        model._nonfinite = f"the loss became {logs['loss']} in epoch {epoch + 1}"
        model.stop_training = True
    return logs
