"""Max, average and L2 pooling over H and W, without padding (the output size floors like
PyTorch).

Each loops over the pool's kh·kw window offsets, each step one whole-batch array operation on
strided views; no Python loop runs per window or per sample.
"""

from __future__ import annotations

from typing import Any

from gpunet import backend, kernels
from gpunet.layers import _windows as win
from gpunet.layers.base import Layer


class _Pool2D(Layer):
    parallel_shards = True

    def __init__(self, pool_size: Any, stride: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.pool = win.pair(pool_size, "pool_size", name, 1)
        self.stride = win.pair(pool_size if stride is None else stride, "stride", name, 1)
        # Disjoint windows: backward can assign instead of add.
        self._disjoint = self.stride[0] >= self.pool[0] and self.stride[1] >= self.pool[1]
        self._shape: Any = None  # (CHWN input shape, NCHW output shape) of the last forward

    def _in(self, x: Any) -> tuple[Any, win.Pair]:
        """The input as contiguous CHWN, and the output (H', W')."""
        x = self._prepare(x, 4)
        ohw = win.out_hw(self, tuple(x.shape[2:]), self.pool, self.stride, (0, 0), "pool_size",
                        x.shape)
        return win.to_chwn(x, self.xp), ohw

    def _grad_in(self, dy: Any) -> tuple[Any, tuple[int, ...]]:
        """dy as CHWN floatx, checked against the last output's shape, and the CHWN input
        shape."""
        in_shape, out_shape = self._saved(self._shape, "input shape")
        dy = self._check_dy(dy, out_shape)
        return win.to_chwn(dy, self.xp), in_shape

    def _new_dx(self, in_shape: tuple[int, ...], out_hw: win.Pair) -> Any:
        """A CHWN dx: zero, or left unset when disjoint windows tile the whole input (backward
        then writes every value)."""
        tiled = self._disjoint and self.stride == self.pool and \
            in_shape[1:3] == (out_hw[0] * self.pool[0], out_hw[1] * self.pool[1])
        return (self.xp.empty if tiled else self.xp.zeros)(in_shape, dtype=backend.floatx())

    def _scatter(self, dx: Any, i: int, j: int, value: Any) -> None:
        """Write (disjoint windows) or add (overlapping ones) `value` into window (i, j)."""
        view = win.window(dx, i, j, value.shape[1:3], self.stride)
        if self._disjoint:
            view[...] = value
        else:
            view += value

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(f"{self!r}: expected one input sample of shape (C, H, W), "
                             f"got {tuple(input_shape)}")
        c, h, w = input_shape
        return (c, *win.out_hw(self, (h, w), self.pool, self.stride, (0, 0), "pool_size",
                              input_shape))

    def get_config(self) -> dict[str, Any]:
        return {"pool_size": win.config(self.pool), "stride": win.config(self.stride)}


class MaxPool2D(_Pool2D):
    """Each output is its window's maximum. The index of the first maximum in row-major window
    order is kept, so backward sends each window's gradient to exactly one input, also when the
    window holds ties (as PyTorch does); overlapping windows add up their gradients."""

    def __init__(self, pool_size: Any, stride: Any = None) -> None:
        super().__init__(pool_size, stride)
        self._idx: Any = None  # (C, H', W', N) winning window offset k = i·kw + j

    def forward(self, x: Any, training: bool = True) -> Any:
        xp = self.xp
        xc, ohw = self._in(x)
        steps = win.offsets(self.pool)
        best = win.window(xc, *steps[0], ohw, self.stride).copy()
        if not training:  # inference needs no argmax (the first pool of the cnn: 1.5 → 1.1 ms)
            for i, j in steps[1:]:
                xp.maximum(best, win.window(xc, i, j, ohw, self.stride), out=best)
            self._idx = self._shape = None
            return win.to_nchw(best)
        idx = xp.zeros(best.shape, dtype=xp.uint8 if len(steps) <= 256 else xp.int32)
        for k, (i, j) in enumerate(steps[1:], start=1):
            v = win.window(xc, i, j, ohw, self.stride)
            won = v > best  # strict: on a tie the earlier offset keeps the window
            xp.maximum(best, v, out=best)
            # k grows with each step, so max(idx, k·won) is k exactly where v won.
            xp.maximum(idx, xp.multiply(won, k, dtype=idx.dtype), out=idx)
        out = win.to_nchw(best)
        self._idx, self._shape = idx, (xc.shape, out.shape)
        return out

    def backward(self, dy: Any) -> Any:
        idx = self._saved(self._idx, "argmax indices")
        dy, in_shape = self._grad_in(dy)
        if not self.input_grad:
            return None
        dx = self._new_dx(in_shape, dy.shape[1:3])
        for k, (i, j) in enumerate(win.offsets(self.pool)):
            if self._disjoint:  # one pass, straight into dx's window
                self.xp.multiply(dy, idx == k, out=win.window(dx, i, j, dy.shape[1:3], self.stride))
            else:
                self._scatter(dx, i, j, dy * (idx == k))
        return win.to_nchw(dx)

    def _clear_cache(self) -> None:
        self._idx = self._shape = None


class AvgPool2D(_Pool2D):
    """Each output is its window's mean; backward spreads dy/(kh·kw) over the window."""

    def forward(self, x: Any, training: bool = True) -> Any:
        xc, ohw = self._in(x)
        steps = win.offsets(self.pool)
        total = win.window(xc, *steps[0], ohw, self.stride).copy()
        for i, j in steps[1:]:
            total += win.window(xc, i, j, ohw, self.stride)
        total *= total.dtype.type(1.0 / len(steps))
        out = win.to_nchw(total)
        self._shape = (xc.shape, out.shape) if training else None
        return out

    def backward(self, dy: Any) -> Any:
        dy, in_shape = self._grad_in(dy)
        if not self.input_grad:
            return None
        dx = self._new_dx(in_shape, dy.shape[1:3])
        share = dy * dy.dtype.type(1.0 / (self.pool[0] * self.pool[1]))
        for i, j in win.offsets(self.pool):
            self._scatter(dx, i, j, share)
        return win.to_nchw(dx)

    def _clear_cache(self) -> None:
        self._shape = None


class L2Pool2D(_Pool2D):
    """Each output is its window's Euclidean norm, y = sqrt(Σ x²) (Nielsen, chapter 6).

    PyTorch's LPPool2d(norm_type=2) is the same function, computed as
    (avg_pool(x²)·kh·kw)^(1/2): equal up to float rounding. Backward: ∂y/∂x = x / y for each x
    of the window; a window of zeros (y = 0), where the norm has no derivative, passes no
    gradient and no NaN (as PyTorch 2.13). Overlapping windows add up their gradients.
    """

    def __init__(self, pool_size: Any, stride: Any = None) -> None:
        super().__init__(pool_size, stride)
        self._x: Any = None  # the last training forward's CHWN input
        self._y: Any = None  # and its CHWN output

    def forward(self, x: Any, training: bool = True) -> Any:
        xc, ohw = self._in(x)
        y = self.xp.zeros((xc.shape[0], *ohw, xc.shape[3]), dtype=xc.dtype)
        for i, j in win.offsets(self.pool):  # y = Σ x², one window offset at a time
            kernels.l2pool_add_square(win.window(xc, i, j, ohw, self.stride), y)
        self.xp.sqrt(y, out=y)
        out = win.to_nchw(y)
        self._x, self._y = (xc, y) if training else (None, None)
        self._shape = (xc.shape, out.shape) if training else None
        return out

    def backward(self, dy: Any) -> Any:
        xc, y = self._saved(self._x), self._y
        dy, in_shape = self._grad_in(dy)
        if not self.input_grad:
            return None
        g = kernels.l2pool_scale(dy, y)  # dy / y, 0 where y = 0
        dx = self.xp.zeros(in_shape, dtype=g.dtype)
        for i, j in win.offsets(self.pool):  # ∂C/∂x = Σ over the windows holding x of g·x
            view = win.window(dx, i, j, g.shape[1:3], self.stride)
            kernels.l2pool_add_grad(g, win.window(xc, i, j, g.shape[1:3], self.stride), view)
        return win.to_nchw(dx)

    def _clear_cache(self) -> None:
        self._x = self._y = self._shape = None
