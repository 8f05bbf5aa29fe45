"""Data augmentation on the device: random shifts of a few pixels and small rotations.

Each output pixel samples the input bilinearly at its inversely transformed position (zeros
outside the image). The whole batch is a handful of array operations on the model's backend,
so on the GPU the images never leave the device.

The images get a one-pixel border of zeros, and each corner's coordinates are clipped into
it, so a sample outside the image reads zeros without any mask; the four corners are read with
one flat `take` each. On the CPU a batch of 64 MNIST digits took 1.44 ms with masks and
`take_along_axis`, and takes 0.75 ms this way (one thread, after the allocator has warmed up).
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
        theta, tx, ty = self._draw(n, xp, xb.dtype)
        yy, xx = xp.meshgrid(xp.arange(h, dtype=xb.dtype), xp.arange(w, dtype=xb.dtype),
                             indexing="ij")
        cy, cx = (h - 1) / 2, (w - 1) / 2
        u = xx.reshape(1, -1) - cx - tx
        v = yy.reshape(1, -1) - cy - ty
        cos, sin = xp.cos(theta), xp.sin(theta)
        sx = cos * u + sin * v + cx  # (n, h·w) source positions, in pixels
        sy = -sin * u + cos * v + cy
        x0, y0 = xp.floor(sx), xp.floor(sy)
        fx, fy = sx - x0, sy - y0
        wp = w + 2  # the padded width; padded index = pixel index + 1
        padded = xp.zeros((n, c, h + 2, wp), dtype=xb.dtype)
        padded[:, :, 1:-1, 1:-1] = xb.reshape(n, c, h, w)
        flat = padded.reshape(-1)
        base = (xp.arange(n) * (c * (h + 2) * wp)).reshape(n, 1, 1) + \
            (xp.arange(c) * ((h + 2) * wp)).reshape(1, c, 1)  # each sample's, channel's start
        cols = [(xp.clip(x0 + d, -1, w) + 1).astype(np.intp) for d in (0, 1)]
        rows = [((xp.clip(y0 + d, -1, h) + 1) * wp).astype(np.intp) for d in (0, 1)]
        a, b, c_, d = (xp.take(flat, base + (r + q)[:, None, :])
                       for r in rows for q in cols)  # corners (y0,x0) (y0,x1) (y1,x0) (y1,x1)
        fx, fy = fx[:, None, :], fy[:, None, :]
        top = a + fx * (b - a)
        out = top + fy * (c_ + fx * (d - c_) - top)
        return out.reshape(xb.shape)

    def _draw(self, n: int, xp: Any, dtype: Any) -> tuple[Any, Any, Any]:
        """Per-sample angle (radians) and shifts, drawn on the device's own generator."""
        if backend.is_cpu(xp):
            r = backend.rng().random((3, n, 1))
        else:
            r = xp.random.random_sample((3, n, 1))
        r = xp.asarray(r, dtype=dtype) * 2 - 1
        theta = r[0] * math.radians(self.max_degrees)
        return theta, xp.round(r[1] * self.max_shift), xp.round(r[2] * self.max_shift)
