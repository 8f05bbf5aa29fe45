"""Mini-batches from host memory to the model's device.

On the CPU each epoch gathers the shuffled data once into a reused buffer and yields views.
On the GPU the data stays in host memory; each batch is gathered into one of two pinned host
buffers and copied on a non-blocking stream while the previous batch computes (double
buffering ordered by CUDA events), so the copies hide behind compute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gpunet import backend


def batch_slices(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class HostBatches:
    """CPU batches: one gather per epoch (when shuffled), then contiguous views."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self._xbuf = np.empty_like(x)
        self._ybuf = np.empty_like(y)

    def epoch(self, order: np.ndarray | None) -> Iterator[tuple[Any, Any]]:
        x, y = self.x, self.y
        if order is not None:
            # mode="clip" (order is a permutation, always in range) lets NumPy gather straight
            # into the buffer; the default mode goes through a full-size temporary
            # (order may hold a subset: one rank's share of the epoch)
            x = np.take(self.x, order, axis=0, out=self._xbuf[:len(order)], mode="clip")
            y = np.take(self.y, order, axis=0, out=self._ybuf[:len(order)], mode="clip")
        for s in batch_slices(len(x), self.batch_size):
            yield x[s], y[s]


class DeviceStream:
    """GPU batches through pinned memory on a non-blocking stream, double buffered."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, cp: Any) -> None:
        import cupyx

        self.x, self.y, self.batch_size, self.cp = x, y, batch_size, cp
        shape_x, shape_y = (batch_size, *x.shape[1:]), (batch_size, *y.shape[1:])
        self._pin_x = [cupyx.empty_pinned(shape_x, x.dtype) for _ in range(2)]
        self._pin_y = [cupyx.empty_pinned(shape_y, y.dtype) for _ in range(2)]
        self._dev_x = [cp.empty(shape_x, x.dtype) for _ in range(2)]
        self._dev_y = [cp.empty(shape_y, y.dtype) for _ in range(2)]
        self._copy_stream = cp.cuda.Stream(non_blocking=True)
        # The device buffers may reuse pool memory that queued compute work still reads: the
        # first copies wait for everything queued on the compute stream so far.
        self._copy_stream.wait_event(cp.cuda.get_current_stream().record())
        self._copied = [None, None]   # event: the copy into slot k has finished
        self._consumed = [None, None]  # event: compute has finished reading slot k

    def _start_copy(self, k: int, rows: np.ndarray | slice) -> int:
        """Gather batch rows into pinned slot k and start its copy to device slot k."""
        if self._copied[k] is not None:
            self._copied[k].synchronize()  # the last copy out of pinned slot k is done
        n = _gather(self.x, rows, self._pin_x[k])
        _gather(self.y, rows, self._pin_y[k])
        stream = self._copy_stream
        if self._consumed[k] is not None:
            stream.wait_event(self._consumed[k])  # GPU-side: compute is done with slot k
        self._dev_x[k][:n].set(self._pin_x[k][:n], stream=stream)
        self._dev_y[k][:n].set(self._pin_y[k][:n], stream=stream)
        self._copied[k] = self.cp.cuda.Event(disable_timing=True)
        self._copied[k].record(stream)
        return n

    def epoch(self, order: np.ndarray | None) -> Iterator[tuple[Any, Any]]:
        cp = self.cp
        n_total = len(self.x) if order is None else len(order)  # order may be a subset
        slices = batch_slices(n_total, self.batch_size)
        rows = [order[s] if order is not None else s for s in slices]
        sizes = [0, 0]
        try:
            if rows:
                sizes[0] = self._start_copy(0, rows[0])
            for i in range(len(rows)):
                k = i % 2
                if i + 1 < len(rows):
                    sizes[1 - k] = self._start_copy(1 - k, rows[i + 1])
                compute = cp.cuda.get_current_stream()
                compute.wait_event(self._copied[k])
                yield self._dev_x[k][:sizes[k]], self._dev_y[k][:sizes[k]]
                self._consumed[k] = cp.cuda.Event(disable_timing=True)
                self._consumed[k].record(compute)
        finally:  # also when training stops mid-epoch: no copy may outlive its buffers
            self._copy_stream.synchronize()


def _gather(src: np.ndarray, rows: np.ndarray | slice, out: np.ndarray) -> int:
    """Copy src[rows] into the front of `out`; return the number of rows."""
    if isinstance(rows, slice):
        part = src[rows]
        np.copyto(out[:len(part)], part)
        return len(part)
    np.take(src, rows, axis=0, out=out[:len(rows)], mode="clip")
    return len(rows)


def make_batches(x: np.ndarray, y: np.ndarray, batch_size: int, xp: Any) -> Any:
    if backend.is_cpu(xp):
        return HostBatches(x, y, batch_size)
    return DeviceStream(x, y, batch_size, xp)
