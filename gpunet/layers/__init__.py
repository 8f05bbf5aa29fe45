"""Layers, each with an explicit forward and backward. Images are NCHW float32."""

from gpunet.layers.activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from gpunet.layers.base import Layer
from gpunet.layers.conv import Conv2D
from gpunet.layers.dense import Dense
from gpunet.layers.dropout import Dropout
from gpunet.layers.pooling import AvgPool2D, L2Pool2D, MaxPool2D
from gpunet.layers.reshape import Flatten

__all__ = [
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "L2Pool2D",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


def registry() -> dict[str, type[Layer]]:
    """Layer classes by name, used to rebuild a saved architecture."""
    import gpunet.layers as mod

    return {name: getattr(mod, name) for name in __all__ if name != "Layer"}
