"""A NumPy-backed stand-in for CuPy, to run gpunet's GPU code paths where no GPU exists.

Streams: copies issued on a non-blocking stream are only queued, and run as late as CUDA would
allow: when an event recorded after them is waited on or synchronised, or the stream is. A copy
reads its pinned source when it runs, not when it is issued, so a protocol that reuses a pinned
buffer too early, or computes on a batch before waiting for its copy, yields wrong batches.

Arrays (`gpu_module`): `DeviceArray` is NumPy memory that, as CuPy's arrays, refuses to be
mixed with host arrays in ufuncs and array functions (TypeError), gives 0-d arrays rather than
scalars from reductions, and is copied to the host only by `get()`. Kernels are interpreted
from their CUDA source (tests/kernels/interpreted.py).
"""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace
from typing import Any

import numpy as np


class Stream:
    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: int | None = None) -> None:
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
    def __init__(self, block: bool = False, disable_timing: bool = False,
                 interprocess: bool = False) -> None:
        self.stream: Stream | None = None
        self.position = 0

    def record(self, stream: Stream | None = None) -> None:
        self.stream = stream or NULL
        self.position = len(self.stream.queue)

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.run_until(self.position)


NULL = Stream()


def _current_stream(device_id: int = -1) -> Stream:
    return NULL


class DeviceArray(np.ndarray):
    """A "device" array: plain memory, filled by `set` through a stream's queue."""

    def set(self, arr: np.ndarray, stream: Stream | None = None) -> None:
        if arr.shape != self.shape:
            raise ValueError(f"set: shape mismatch {arr.shape} vs {self.shape}")
        (stream or NULL).enqueue(lambda: np.copyto(self.view(np.ndarray), arr))

    def get(self, stream: Stream | None = None, order: str = "C", out: Any = None,
            blocking: bool = True) -> np.ndarray:
        if out is not None or order != "C":
            raise NotImplementedError("the stand-in copies to a new C-ordered array only")
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o, ufunc.__name__) for o in kwargs["out"])
        args = [_unwrap(a, ufunc.__name__) for a in inputs]
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _device_function(func)(*args, **kwargs)


def _unwrap(a: Any, where: str) -> Any:
    """A DeviceArray's memory as a plain ndarray; a host array is refused, as CuPy does."""
    if isinstance(a, DeviceArray):
        return a.view(np.ndarray)
    if isinstance(a, np.ndarray) and a.ndim > 0:
        raise TypeError(f"{where}: Unsupported type {type(a)} (a host array mixed with device "
                        "arrays)")
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(x, where) for x in a)
    return a


def _wrap(r: Any) -> Any:
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    if isinstance(r, np.ndarray) and not isinstance(r, DeviceArray):
        return r.view(DeviceArray)
    if isinstance(r, np.generic):  # CuPy reductions give 0-d device arrays, not scalars
        return np.asarray(r).view(DeviceArray)
    return r


def _device_function(func: Any) -> Any:
    """`func` over device arrays only, its array results device arrays."""
    def call(*args: Any, **kwargs: Any) -> Any:
        name = getattr(func, "__name__", "function")
        args = tuple(_unwrap(a, name) for a in args)
        kwargs = {k: _unwrap(v, name) for k, v in kwargs.items()}
        return _wrap(func(*args, **kwargs))
    return call


def _asarray(a: Any, dtype: Any = None, order: Any = None, *, copy: Any = None,
             blocking: bool = False) -> DeviceArray:
    """cupy.asarray: a device array is returned as is (or cast); host data is copied over."""
    if isinstance(a, DeviceArray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return np.array(a, dtype=dtype).view(DeviceArray)


def _empty(shape: Any, dtype: Any = float, order: str = "C") -> DeviceArray:
    return np.empty(shape, dtype, order).view(DeviceArray)


def _empty_pinned(shape: Any, dtype: Any = float, order: str = "C") -> np.ndarray:
    return np.empty(shape, dtype, order)


class _Random:
    """cupy.random: seed, random / random_sample(size, dtype)."""

    def __init__(self) -> None:
        self._gen = np.random.default_rng(0)

    def seed(self, seed: int | None = None) -> None:
        self._gen = np.random.default_rng(seed)

    def random_sample(self, size: Any = None, dtype: Any = float) -> DeviceArray:
        return np.asarray(self._gen.random(size, dtype=dtype)).view(DeviceArray)

    def random(self, size: Any = None, dtype: Any = float) -> DeviceArray:
        return self.random_sample(size, dtype)


def _as_strided(x: Any, shape: Any = None, strides: Any = None) -> DeviceArray:
    return np.lib.stride_tricks.as_strided(_unwrap(x, "as_strided"), shape=shape,
                                           strides=strides).view(DeviceArray)


class _Cupy(types.ModuleType):
    """The `cupy` namespace: NumPy's functions on device arrays, plus CuPy's own parts."""

    def __getattr__(self, name: str) -> Any:
        obj = getattr(np, name)
        return obj if isinstance(obj, type) or not callable(obj) else _device_function(obj)


def gpu_module() -> tuple[Any, Any]:
    """(cupy, cupyx) stand-ins, registered in sys.modules under "fakecupy" (gpunet imports
    `<name>.lib.stride_tricks`); the caller restores sys.modules."""
    from tests.kernels.interpreted import InterpretedKernel

    cp = _Cupy("fakecupy")
    cp.ndarray = DeviceArray
    cp.cuda = SimpleNamespace(Stream=Stream, Event=Event, get_current_stream=_current_stream,
                              runtime=SimpleNamespace(getDeviceCount=lambda: 1))
    cp.random = _Random()
    pool = SimpleNamespace(used_bytes=lambda: 0, total_bytes=lambda: 0)  # nothing is measured
    cp.get_default_memory_pool = lambda: pool
    cp.ElementwiseKernel = InterpretedKernel
    cp.asarray = _asarray
    tricks = types.ModuleType("fakecupy.lib.stride_tricks")
    tricks.as_strided = _as_strided
    cp.lib = types.ModuleType("fakecupy.lib")
    cp.lib.stride_tricks = tricks
    for name, mod in (("fakecupy", cp), ("fakecupy.lib", cp.lib),
                      ("fakecupy.lib.stride_tricks", tricks)):
        sys.modules[name] = mod
    _, cupyx = module()
    return cp, cupyx


def module() -> tuple[Any, Any]:
    """(cp, cupyx) stand-ins."""
    cuda = SimpleNamespace(Stream=Stream, Event=Event, get_current_stream=_current_stream)
    cp = SimpleNamespace(cuda=cuda, empty=_empty)
    cupyx = SimpleNamespace(empty_pinned=_empty_pinned)
    return cp, cupyx


def signatures() -> dict[str, Any]:
    """CuPy's name -> the stand-in for it: each must take the parameters CuPy's takes (so that
    a call CuPy refuses fails here too); tests/cupy_real/test_fake_cupy.py compares them."""
    from tests.kernels.interpreted import InterpretedKernel

    return {"cuda.Stream": Stream, "cuda.Event": Event, "cuda.get_current_stream": _current_stream,
            "cuda.Stream.wait_event": Stream.wait_event, "cuda.Stream.record": Stream.record,
            "cuda.Stream.synchronize": Stream.synchronize, "cuda.Event.record": Event.record,
            "cuda.Event.synchronize": Event.synchronize, "ndarray.set": DeviceArray.set,
            "ndarray.get": DeviceArray.get, "asarray": _asarray, "empty": _empty,
            "random.seed": _Random.seed, "random.random_sample": _Random.random_sample,
            "random.random": _Random.random, "lib.stride_tricks.as_strided": _as_strided,
            "ElementwiseKernel": InterpretedKernel, "cupyx.empty_pinned": _empty_pinned,
            **_graph_signatures()}


def _graph_signatures() -> dict[str, Any]:
    """The capture stand-ins of tests/fake_graph.py (imported here: it imports this module)."""
    from tests import fake_graph as g

    return {"cuda.Stream.begin_capture": g.Stream.begin_capture,
            "cuda.Stream.end_capture": g.Stream.end_capture, "cuda.Graph.launch": g.Graph.launch,
            "cuda.MemoryPool.malloc": g.MemoryPool.malloc,
            "cuda.MemoryPool.total_bytes": g.MemoryPool.total_bytes,
            "cuda.using_allocator": g.using_allocator, "RawKernel": g.RawKernel}
