"""The two reference models of `scripts/train_mnist.py` and the benchmark."""

from __future__ import annotations

from gpunet.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU
from gpunet.model import Sequential


def mlp(dropout: float = 0.0, device: str = "auto") -> Sequential:
    """784-256-128-64-10 with ReLU (242,762 parameters)."""
    layers: list[Layer] = []
    for n_in, n_out in ((784, 256), (256, 128), (128, 64)):
        layers += [Dense(n_in, n_out), ReLU()]
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(64, 10))
    return Sequential(layers, device=device, input_shape=(784,))


def cnn(dropout: float = 0.0, device: str = "auto") -> Sequential:
    """Nielsen's network3: conv 5×5×20 → maxpool 2 → conv 5×5×40 → maxpool 2 → dense 100 → 10.

    ReLU comes after max-pooling: max commutes with a monotonic activation, so this equals
    conv → ReLU → pool exactly while applying ReLU to a quarter of the values.
    """
    layers: list[Layer] = [
        Conv2D(1, 20, 5), MaxPool2D(2), ReLU(),
        Conv2D(20, 40, 5), MaxPool2D(2), ReLU(),
        Flatten(), Dense(40 * 4 * 4, 100), ReLU(),
    ]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(100, 10))
    return Sequential(layers, device=device, input_shape=(1, 28, 28))


MODELS = {"mlp": mlp, "cnn": cnn}
