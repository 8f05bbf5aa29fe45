"""Data for the training command: which set, which subset, and a line saying which was used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpunet import datasets


@dataclass
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str


def load_data(dataset: str, data_dir: str | None, subset: str, layout: str,
              seed: int = 0) -> TrainingData:
    """subset: "auto" | "full" | "5k" (MNIST only) | a number N (N training images).

    The training set is shuffled once with `seed` before anything is cut from it, so N images
    and "the last 10% for validation" are a random draw that the seed repeats.
    """
    first_n = None
    if subset.isdigit():
        first_n, subset = int(subset), "full"
        if first_n < 1:
            raise ValueError(f"--train-subset must be auto, full, 5k or N >= 1, got {first_n}")
    elif subset not in ("auto", "full", "5k"):
        raise ValueError(f"--train-subset must be auto, full, 5k or a number, got {subset!r}")
    if dataset == "mnist":
        if subset == "auto":
            splits, source = datasets.load_mnist_default(data_dir)
        else:
            splits, source = datasets.load_dataset("mnist-5k" if subset == "5k" else "mnist",
                                                   data_dir)
    else:
        if subset == "5k":
            raise ValueError("--train-subset 5k exists for MNIST only; for fashion-mnist use "
                             "full or a number N")
        splits, source = datasets.load_dataset(dataset, data_dir)
    (x_train, y_train), (x_test, y_test) = splits
    x_train, y_train = datasets.shuffled(x_train, y_train, seed)
    description = str(source)
    if first_n is not None:
        if first_n > len(x_train):
            raise ValueError(f"--train-subset {first_n}: the training set has only "
                             f"{len(x_train):,} images")
        x_train, y_train = x_train[:first_n], y_train[:first_n]
        description += f"; training on {first_n:,} of them (shuffled with the seed)"
    return TrainingData(datasets.to_float(x_train, layout=layout), y_train.astype(np.int32),
                        datasets.to_float(x_test, layout=layout), y_test.astype(np.int32),
                        description)
