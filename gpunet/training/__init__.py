"""Training: `fit` with streamed mini-batches and callbacks, `evaluate`, `predict`, checkpoints."""

from gpunet.training.checkpoint import load_checkpoint, save_checkpoint
from gpunet.training.evaluate import evaluate, predict
from gpunet.training.loop import History, fit

__all__ = ["History", "evaluate", "fit", "load_checkpoint", "predict", "save_checkpoint"]
