"""Training: `fit` (an epoch loop around the model's `train_step`, with one CallbackList),
`evaluate` and `predict` (around `test_step` / `predict_step`), batches, CPU shards,
checkpoints."""

from gpunet.callbacks import History
from gpunet.training.checkpoint import load_checkpoint, save_checkpoint
from gpunet.training.evaluate import evaluate, predict
from gpunet.training.loop import fit

__all__ = ["History", "evaluate", "fit", "load_checkpoint", "predict", "save_checkpoint"]
