"""Training callbacks with Keras semantics (see `base` for the hooks and the state API)."""

from gpunet.callbacks.base import Callback
from gpunet.callbacks.callback_list import CallbackList
from gpunet.callbacks.csv_logger import CSVLogger
from gpunet.callbacks.early_stopping import EarlyStopping
from gpunet.callbacks.history import History
from gpunet.callbacks.lr import CosineAnnealing, LearningRateScheduler, ReduceLROnPlateau
from gpunet.callbacks.model_checkpoint import ModelCheckpoint
from gpunet.callbacks.nan import TerminateOnNaN
from gpunet.callbacks.progress import ProgressBar

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "CosineAnnealing",
    "EarlyStopping",
    "History",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]
