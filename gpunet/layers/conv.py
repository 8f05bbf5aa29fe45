"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one GEMM per product."""

from __future__ import annotations

import math
from typing import Any

from gpunet import backend
from gpunet.layers import _conv_gemm as cg
from gpunet.layers import _im2col as im
from gpunet.layers.base import Layer


class Conv2D(Layer):
    """`W` has shape (out_channels, in_channels, kh, kw) and `b` shape (out_channels,).

    With K = C·kh·kw and M = H'·W'·N (the output positions of the whole batch), the forward
    pass is y(F, M) = [W | b](F, K+1) @ cols(K+1, M), cols ending in a row of ones so that the
    bias rides along; backward is [dW | db] = (cols @ dyᵀ)ᵀ and dx = col2im(Wᵀ @ dy) (skipped
    when `input_grad` is False). How the products are blocked for the CPU cache, and when the
    columns are kept from forward to backward or remade, is `_conv_gemm`'s business.
    """

    parallel_shards = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0) -> None:
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Conv2D: {arg} must be a positive int, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = im.pair(kernel_size, "kernel_size", "Conv2D", 1)
        self.stride = im.pair(stride, "stride", "Conv2D", 1)
        self.padding = im.pair(padding, "padding", "Conv2D", 0)
        fan_in = in_channels * self.kernel[0] * self.kernel[1]
        limit = math.sqrt(6.0 / fan_in)  # He uniform, as Dense
        w = backend.rng().uniform(-limit, limit, (out_channels, in_channels, *self.kernel))
        self._add_param("W", w)
        self._add_param("b", self.xp.zeros(out_channels))
        self._cols: Any = None  # (K+1, M) columns of the last training forward, when kept
        self._padded: Any = None  # or else its padded CHWN input, to remake them from
        self._shapes: Any = None  # its input's (H, W) and its output's (N, F, H', W')

    def _out_hw(self, shape: tuple[int, ...]) -> im.Pair:
        """(H', W') for an input shape (N, C, H, W) or (C, H, W); checks channels and fit."""
        if len(shape) < 3 or shape[-3] != self.in_channels:
            batch = "N, " if len(shape) == 4 else ""
            raise ValueError(f"{self!r}: expected input of shape ({batch}{self.in_channels}, "
                             f"H, W), got {tuple(shape)}")
        return im.out_hw(self, tuple(shape[-2:]), self.kernel, self.stride, self.padding,
                         "kernel_size", shape)

    def forward(self, x: Any, training: bool = True) -> Any:
        xp = self.xp
        x = self._prepare(x, 4)
        ohw = self._out_hw(x.shape)
        n, f = x.shape[0], self.out_channels
        padded = im.pad(im.to_chwn(x, xp), self.padding, xp)
        wb = xp.concatenate([self.params["W"].reshape(f, -1), self.params["b"].reshape(-1, 1)],
                            axis=1)
        self._clear_cache()
        if training and not cg.by_rows(xp, wb.shape[1] - 1):  # keep the columns for backward
            self._cols = im.im2col(padded, self.kernel, self.stride, ohw, xp)
            y = cg.weights_at_cols(wb, self._cols, xp)
        else:
            y = cg.conv_rows(padded, wb, self.kernel, self.stride, ohw, xp)
            self._padded = padded if training else None
        y = im.to_nchw(y.reshape(f, *ohw, n))
        self._shapes = (x.shape[2:], y.shape) if training else None
        return y

    def backward(self, dy: Any) -> Any:
        (h, w), out_shape = self._saved(self._shapes)
        xp = self.xp
        if tuple(getattr(dy, "shape", ())) != out_shape:
            raise ValueError(f"{self!r}: dy must have the output's shape {out_shape}, "
                             f"got {tuple(getattr(dy, 'shape', ()))}")
        n, f, oh, ow = out_shape
        d2 = im.to_chwn(backend.to_xp(dy, xp), xp, backend.floatx()).reshape(f, -1)
        weights = self.params["W"]
        wt = weights.reshape(f, -1).T
        if self._padded is not None:  # columns remade a few output rows at a time
            g, dx = cg.conv_rows_backward(self._padded, wt, d2, self.kernel, self.stride,
                                          (oh, ow), xp, self.input_grad)
        else:
            g = cg.cols_at_grad(self._cols, d2, xp)
            dx = None
            if self.input_grad:
                padded_hw = (h + 2 * self.padding[0], w + 2 * self.padding[1])
                dx = cg.gemm_col2im(wt, d2, padded_hw, self.kernel, self.stride, (oh, ow), xp)
        self.grads["W"][...] = g[:-1].T.reshape(weights.shape)  # g is (K+1, F): its last
        self.grads["b"][...] = g[-1]  # row, from the row of ones, is db
        return None if dx is None else im.to_nchw(im.unpad(dx, self.padding))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(f"{self!r}: expected one input sample of shape "
                             f"({self.in_channels}, H, W), got {tuple(input_shape)}")
        return (self.out_channels, *self._out_hw(tuple(input_shape)))

    def get_config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": im.config(self.kernel), "stride": im.config(self.stride),
                "padding": im.config(self.padding)}

    def _clear_cache(self) -> None:
        self._cols = self._padded = self._shapes = None
