"""A stand-in for the parts of CuPy that `DeviceStream` uses, strict about stream order.

Copies issued on a non-blocking stream are only queued, and run as late as CUDA would allow:
when an event recorded after them is waited on or synchronised, or the stream is. A copy reads
its pinned source when it runs, not when it is issued, so a protocol that reuses a pinned buffer
too early, or computes on a batch before waiting for its copy, yields wrong batches here.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np


class Stream:
    def __init__(self, non_blocking: bool = False) -> None:
        self.non_blocking = non_blocking
        self.queue: list[Any] = []
        self.done = 0  # operations run so far

    def enqueue(self, op: Any) -> None:
        if self.non_blocking:
            self.queue.append(op)
        else:
            op()  # the compute ("null") stream: NumPy work is synchronous here
            self.queue.append(None)
            self.done += 1

    def run_until(self, position: int) -> None:
        while self.done < position:
            op = self.queue[self.done]
            self.done += 1
            if op is not None:
                op()

    def synchronize(self) -> None:
        self.run_until(len(self.queue))

    def wait_event(self, event: Event) -> None:
        event.synchronize()  # conservative: the waited-for work has run when the wait returns

    def record(self, event: Event | None = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    @property
    def pending(self) -> int:
        return len(self.queue) - self.done


class Event:
    def __init__(self, **_: Any) -> None:
        self.stream: Stream | None = None
        self.position = 0

    def record(self, stream: Stream | None = None) -> None:
        self.stream = stream or NULL
        self.position = len(self.stream.queue)

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.run_until(self.position)


NULL = Stream()


class DeviceArray(np.ndarray):
    """A "device" array: plain memory, filled by `set` through a stream's queue."""

    def set(self, arr: np.ndarray, stream: Stream | None = None) -> None:
        if arr.shape != self.shape:
            raise ValueError(f"set: shape mismatch {arr.shape} vs {self.shape}")
        (stream or NULL).enqueue(lambda: np.copyto(self.view(np.ndarray), arr))

    def get(self) -> np.ndarray:
        return np.array(self.view(np.ndarray))


def module() -> tuple[Any, Any]:
    """(cp, cupyx) stand-ins."""
    cuda = SimpleNamespace(Stream=Stream, Event=Event, get_current_stream=lambda: NULL)
    cp = SimpleNamespace(cuda=cuda,
                         empty=lambda shape, dtype: np.empty(shape, dtype).view(DeviceArray))
    cupyx = SimpleNamespace(empty_pinned=lambda shape, dtype: np.empty(shape, dtype))
    return cp, cupyx
