"""Turn uint8 image arrays into the float32 inputs models take, and shuffle a split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpunet import backend

LAYOUTS = ("flat", "image")


def to_float(x: Any, layout: str = "flat") -> Any:
    """Scale uint8 images to float32 in [0, 1].

    `x` is (N, H, W) or already flat (N, H*W) with square images, on NumPy or CuPy (the result
    stays on the same backend). layout="flat" gives (N, H*W) for Dense layers; layout="image"
    gives (N, 1, H, W), channels first, for convolutions.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if x.dtype != np.uint8:
        raise ValueError(f"to_float expects uint8 pixels 0-255, got dtype {x.dtype} "
                         "(already scaled?)")
    if x.ndim == 3:
        n, h, w = x.shape
    elif x.ndim == 2 and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        n, h, w = x.shape[0], math.isqrt(x.shape[1]), math.isqrt(x.shape[1])
    else:
        raise ValueError(f"to_float expects images (N, H, W) or (N, H*W), got shape {x.shape}")
    xp = backend.xp_of(x)
    out = x.astype(xp.float32)
    out /= xp.float32(255)
    return out.reshape(n, h * w) if layout == "flat" else out.reshape(n, 1, h, w)


def shuffled(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels in one random order, the same for the same `seed`."""
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]
