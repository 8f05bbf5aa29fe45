"""Inference: `evaluate` (mean loss and accuracy) and `predict` (a NumPy array), in batches,
each batch through `test_step` / `predict_step` of the model (or of its CPU `Shards`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpunet import backend
from gpunet import distributed as dist
from gpunet.training.data import check_batch_size, check_x, check_xy
from gpunet.training.metrics import Tally
from gpunet.training.shards import resolve_workers, sharded


def evaluate_arrays(runner: Any, x: np.ndarray, y: np.ndarray,
                    batch_size: int) -> dict[str, float]:
    """Mean loss and accuracy over checked host arrays, summed on the device and read once.
    `runner`: the model, or `Shards` of it (anything with `test_step` and `xp`)."""
    xp = runner.xp
    tally = Tally(xp)
    for i in range(0, len(x), batch_size):
        yb = xp.asarray(y[i:i + batch_size])
        out, loss = runner.test_step(xp.asarray(x[i:i + batch_size]), yb)
        tally.add(out, yb, loss)
    return tally.logs()


@dist.guarded("evaluate")  # with >1 ranks an error on one rank ends them all
def evaluate(model: Any, x: Any, y: Any, batch_size: int = 1024, workers: int | str = "auto",
             distributed: Any = None) -> dict[str, float]:
    """{"loss", "accuracy"} of the compiled model on x, y. `distributed`: a communicator
    (`gpunet.distributed.init()`): every rank computes a part and gets the whole set's."""
    if model.loss is None:
        raise RuntimeError("evaluate: call model.compile(loss=...) first")
    batch_size = check_batch_size("evaluate", batch_size)
    n_workers = resolve_workers(model, workers, "evaluate", batch_size)
    x, y = check_xy(x, y, model, "evaluate")
    with sharded(model, n_workers, training=False) as runner:
        return dist.evaluate_sharded(distributed, evaluate_arrays, runner, x, y, batch_size)


def predict(model: Any, x: Any, batch_size: int = 1024, workers: int | str = "auto") -> np.ndarray:
    """Model outputs for x as a host NumPy array (shape (0, outputs...) for an empty x)."""
    batch_size = check_batch_size("predict", batch_size)
    n_workers = resolve_workers(model, workers, "predict", batch_size)
    x = check_x(x, model, "predict")
    if len(x) == 0 and model.output_shape is not None:
        return np.zeros((0, *model.output_shape), np.float32)
    with sharded(model, n_workers, training=False) as runner:
        outs = [backend.to_numpy(runner.predict_step(model.xp.asarray(x[i:i + batch_size])))
                for i in range(0, max(len(x), 1), batch_size)]
    return np.concatenate(outs)
