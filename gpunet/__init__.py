"""gpunet: neural networks with explicit, readable backpropagation, on CuPy or NumPy."""

from gpunet import (
    backend,
    callbacks,
    datasets,
    distributed,
    gradcheck,
    interop,
    layers,
    losses,
    optimizers,
)
from gpunet.backend import DeviceError, gpu_available, seed
from gpunet.loading import load_model
from gpunet.model import Sequential

__version__ = "0.1.0"

__all__ = [
    "DeviceError",
    "Sequential",
    "backend",
    "callbacks",
    "datasets",
    "distributed",
    "gpu_available",
    "gradcheck",
    "interop",
    "layers",
    "load_model",
    "losses",
    "optimizers",
    "seed",
]
