"""Data augmentation on the device: random shifts of a few pixels and small rotations.

Each output pixel samples the input bilinearly at its inversely transformed position (zeros
outside the image). The whole batch is a handful of array operations on the model's backend,
so on the GPU the images never leave the device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpunet import backend


class RandomShiftRotate:
    """Shift by up to `max_shift` pixels and rotate by up to `max_degrees`, per sample.

    Batches may be flat (N, C·H·W) or images (N, C, H, W); `image_shape` is (C, H, W).
    """

    def __init__(self, max_shift: float = 2.0, max_degrees: float = 10.0,
                 image_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        if max_shift < 0 or max_degrees < 0:
            raise ValueError(f"RandomShiftRotate: max_shift and max_degrees must be >= 0, got "
                             f"{max_shift!r} and {max_degrees!r}")
        self.max_shift, self.max_degrees = float(max_shift), float(max_degrees)
        self.image_shape = tuple(image_shape)

    def __call__(self, xb: Any, xp: Any) -> Any:
        c, h, w = self.image_shape
        n = xb.shape[0]
        if math.prod(xb.shape[1:]) != c * h * w:
            raise ValueError(f"RandomShiftRotate: batch samples of shape {tuple(xb.shape[1:])} "
                             f"do not hold images of shape {self.image_shape}")
        img = xb.reshape(n, c, h * w)
        theta, tx, ty = self._draw(n, xp, xb.dtype)
        yy, xx = xp.meshgrid(xp.arange(h, dtype=xb.dtype), xp.arange(w, dtype=xb.dtype),
                             indexing="ij")
        cy, cx = (h - 1) / 2, (w - 1) / 2
        u = xx.reshape(1, -1) - cx - tx
        v = yy.reshape(1, -1) - cy - ty
        cos, sin = xp.cos(theta), xp.sin(theta)
        sx = cos * u + sin * v + cx
        sy = -sin * u + cos * v + cy
        x0, y0 = xp.floor(sx), xp.floor(sy)
        fx, fy = sx - x0, sy - y0
        out = xp.zeros_like(img)
        for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                               (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            idx = (xp.clip(yi, 0, h - 1) * w + xp.clip(xi, 0, w - 1)).astype(np.int64)
            idx = xp.broadcast_to(idx[:, None, :], img.shape)
            out += xp.take_along_axis(img, idx, axis=2) * (weight * inside)[:, None, :]
        return out.reshape(xb.shape)

    def _draw(self, n: int, xp: Any, dtype: Any) -> tuple[Any, Any, Any]:
        """Per-sample angle (radians) and shifts, drawn on the device's own generator."""
        gen = backend.rng() if xp is np else xp.random
        r = gen.random((3, n, 1)) if xp is np else gen.random_sample((3, n, 1))
        r = xp.asarray(r, dtype=dtype) * 2 - 1
        theta = r[0] * math.radians(self.max_degrees)
        return theta, xp.round(r[1] * self.max_shift), xp.round(r[2] * self.max_shift)
