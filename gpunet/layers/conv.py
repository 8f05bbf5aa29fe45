"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one GEMM per product.

The reference path, written out in `Conv2D._forward_reference` / `_backward_reference`, is the
one CuPy runs and the one to read: with K = C·kh·kw and M = H'·W'·N (every output position of
the whole batch) and the padded input's windows as the columns of a (K, M) matrix,

    forward   y  = W·cols + b                  (F, K)·(K, M), b added to every column
    backward  ∂C/∂W = δ·colsᵀ                  BP4: each weight meets one input per position
              ∂C/∂b = Σ δ over positions       BP3
              dx = col2im(Wᵀ·δ)                BP2's (wˡ⁺¹)ᵀδˡ⁺¹, summed back onto the windows

where δ = ∂C/∂y laid out as (F, M). On NumPy the same products run blocked for the CPU cache
(`_conv_blocked`, an override tested against this path); set `use_cpu_override = False` on a
layer to run the reference there too. On CuPy every product goes through `gemm.matmul` (so a
captured CUDA-graph step can run it), and with GPUNET_CONV_KERNELS=1 im2col and col2im are one
kernel launch each (`gpunet.kernels.conv_cols`; see docs/gpu_speed.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.kernels import conv_cols, gemm
from gpunet.layers import _conv_blocked
from gpunet.layers import _windows as win
from gpunet.layers._im2col import col2im, im2col
from gpunet.layers.base import Layer


class Conv2D(Layer):
    """`W` has shape (out_channels, in_channels, kh, kw) and `b` shape (out_channels,)."""

    parallel_shards = True
    use_cpu_override = True  # on NumPy, run `_conv_blocked` instead of the reference path

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0) -> None:
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Conv2D: {arg} must be a positive int, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = win.pair(kernel_size, "kernel_size", "Conv2D", 1)
        self.stride = win.pair(stride, "stride", "Conv2D", 1)
        self.padding = win.pair(padding, "padding", "Conv2D", 0)
        fan_in = in_channels * self.kernel[0] * self.kernel[1]
        limit = math.sqrt(6.0 / fan_in)  # He uniform, as Dense
        w = backend.rng().uniform(-limit, limit, (out_channels, in_channels, *self.kernel))
        self._add_param("W", w)
        self._add_param("b", self.xp.zeros(out_channels))
        self._kept: Any = None  # what the last training forward kept for backward (the columns)
        self._shapes: Any = None  # its padded CHWN input's shape and its NCHW output's shape

    def _blocked(self) -> bool:
        """Whether this layer runs the CPU override (NumPy, unless switched off)."""
        return self.use_cpu_override and self.xp is np

    def _out_hw(self, shape: tuple[int, ...]) -> win.Pair:
        """(H', W') for an input shape (N, C, H, W) or (C, H, W); checks channels and fit."""
        if len(shape) < 3 or shape[-3] != self.in_channels:
            batch = "N, " if len(shape) == 4 else ""
            raise ValueError(f"{self!r}: expected input of shape ({batch}{self.in_channels}, "
                             f"H, W), got {tuple(shape)}")
        return win.out_hw(self, tuple(shape[-2:]), self.kernel, self.stride, self.padding,
                          "kernel_size", shape)

    def forward(self, x: Any, training: bool = True) -> Any:
        x = self._prepare(x, 4)
        ohw = self._out_hw(x.shape)
        a = win.pad(win.to_chwn(x, self.xp), self.padding, self.xp)  # (C, H+2p, W+2p, N)
        self._clear_cache()
        if self._blocked():
            y = _conv_blocked.forward(self, a, ohw, training)
        else:
            y = self._forward_reference(a, ohw, training)
        y = win.to_nchw(y.reshape(self.out_channels, *ohw, x.shape[0]))  # (F, M) → NCHW view
        self._shapes = (a.shape, y.shape) if training else None
        return y

    def _forward_reference(self, a: Any, ohw: win.Pair, training: bool) -> Any:
        """y = W·cols + b as (F, M), keeping the columns for backward when training."""
        cols = _im2col(a, self.kernel, self.stride, ohw, self.xp)  # (K, M)
        y = gemm.matmul(self.params["W"].reshape(self.out_channels, -1), cols)  # (F, K)·(K, M)
        y += self.params["b"][:, None]
        self._kept = cols if training else None
        return y

    def backward(self, dy: Any) -> Any:
        a_shape, out_shape = self._saved(self._shapes)
        dy = self._check_dy(dy, out_shape)
        f, oh, ow = out_shape[1:]
        d = win.to_chwn(dy, self.xp).reshape(f, -1)  # δ as (F, M), columns ordered (H', W', N)
        if self._blocked():
            gw, gb, ga = _conv_blocked.backward(self, d, a_shape, (oh, ow))
        else:
            gw, gb, ga = self._backward_reference(d, a_shape, (oh, ow))
        self.grads["W"][...] = gw.reshape(self.params["W"].shape)
        self.grads["b"][...] = gb
        return None if ga is None else win.to_nchw(win.unpad(ga, self.padding))

    def _backward_reference(self, d: Any, a_shape: tuple[int, ...],
                            ohw: win.Pair) -> tuple[Any, Any, Any]:
        """(gW as (F, K), gb, gx as a padded CHWN array or None) from δ = d(F, M)."""
        cols = self._kept  # (K, M): column m is the input window output position m saw
        gw = gemm.matmul(d, cols.T)  # BP4: ∂C/∂W = δ·colsᵀ, summed over positions and batch
        gb = d.sum(axis=1)  # BP3: ∂C/∂b = δ, summed over positions and batch
        if not self.input_grad:
            return gw, gb, None
        w = self.params["W"].reshape(self.out_channels, -1)  # (F, K)
        gx = _col2im(gemm.matmul(w.T, d), a_shape, self.kernel, self.stride, ohw,
                     self.xp)  # BP2: Wᵀδ
        return gw, gb, gx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(f"{self!r}: expected one input sample of shape "
                             f"({self.in_channels}, H, W), got {tuple(input_shape)}")
        return (self.out_channels, *self._out_hw(tuple(input_shape)))

    def get_config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": win.config(self.kernel), "stride": win.config(self.stride),
                "padding": win.config(self.padding)}

    def _clear_cache(self) -> None:
        self._kept = self._shapes = None


def _im2col(a: Any, kernel: win.Pair, stride: win.Pair, ohw: win.Pair, xp: Any) -> Any:
    """`im2col` of the padded CHWN input: the one-launch kernel on CuPy when switched on."""
    if conv_cols.enabled(a):
        return conv_cols.im2col(a, kernel, stride, (0, 0), ohw, xp)
    return im2col(a, kernel, stride, ohw, xp)


def _col2im(cols: Any, shape: tuple[int, ...], kernel: win.Pair, stride: win.Pair,
            ohw: win.Pair, xp: Any) -> Any:
    """`col2im` into the padded CHWN `shape`: the one-launch kernel on CuPy when switched on."""
    if conv_cols.enabled(cols):
        return conv_cols.col2im(cols, tuple(shape[:3]), kernel, stride, (0, 0), ohw, xp)
    return col2im(cols, shape, kernel, stride, ohw, xp)
