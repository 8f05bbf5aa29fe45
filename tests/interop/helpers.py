"""Models for the interop tests: the two reference models and one holding every layer kind."""

from __future__ import annotations

import numpy as np

import gpunet as gn
from gpunet import reference_models as models


def every_kind(device: str = "cpu") -> gn.Sequential:
    """Every registered layer class once, on 28×28 grey images: strided and padded
    convolutions, overlapping pooling windows, non-square kernels, dropout in two places."""
    L = gn.layers
    convs = [L.Conv2D(1, 4, 3, stride=2, padding=1), L.LeakyReLU(0.1),
             L.MaxPool2D(3, stride=2),  # 14 → 6, windows overlap
             L.Conv2D(4, 6, (3, 2), stride=(1, 2), padding=(1, 0)), L.Tanh(),
             L.AvgPool2D(2, stride=1), L.Sigmoid()]  # overlapping
    if hasattr(L, "L2Pool2D"):
        convs.append(L.L2Pool2D(2, stride=1))
    convs.append(L.Dropout(0.3))
    shape: tuple[int, ...] = (1, 28, 28)
    for layer in convs:
        shape = layer.output_shape(shape)
    n = int(np.prod(shape))
    dense = [L.Flatten(), L.Dense(n, 16), L.ReLU(), L.Dropout(0.2), L.Dense(16, 10),
             L.Softmax()]
    return gn.Sequential(convs + dense, device=device, input_shape=(1, 28, 28))


def reference_models() -> dict[str, gn.Sequential]:
    """The mlp and cnn of gpunet.reference_models (with dropout) and the every-kind model, on
    the CPU."""
    gn.seed(0)
    return {"mlp": models.mlp(dropout=0.2, device="cpu"),
            "cnn": models.cnn(dropout=0.2, device="cpu"), "every_kind": every_kind()}


def inputs(model: gn.Sequential, n: int, seed: int = 0) -> np.ndarray:
    """n random float32 samples shaped like the model's input, in [0, 1) like images."""
    return np.random.default_rng(seed).random((n, *model.input_shape), dtype=np.float32)


def mnist_test(model: gn.Sequential) -> np.ndarray:
    """The 10,000 official MNIST test images (bundled), shaped for `model`."""
    (_, _), (x, _) = gn.datasets.load_mnist(subset="5k")
    return gn.datasets.to_float(x).reshape(len(x), *model.input_shape)
