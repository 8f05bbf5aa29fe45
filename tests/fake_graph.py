"""CUDA stream capture and graphs on the NumPy-backed CuPy stand-in (tests/fake_cupy.py).

`install(monkeypatch, cp)` gives the stand-in `cp` (from `fake_cupy.gpu_module()`) what
`gpunet.training.cuda_graph` uses: `cuda.Stream` as a context manager with `begin_capture` /
`end_capture`, `cuda.Graph.launch`, `cuda.MemoryPool`, `cuda.using_allocator` and a
`RawKernel` that runs gpunet's raw kernels compiled for the host (tests/kernels/host_compiled).

While a stream captures, it refuses what CuPy 14.2 and CUDA refuse: cuBLAS (`@`, matmul, dot:
NotImplementedError, as `cublas.setStream`), cuRAND (`cp.random`), host↔device copies and
anything that reads a device value on the host (`get`, `float`, `int`, `bool`, `item`), and
capture on the null stream. It also refuses work done while CuPy's default memory pool
allocates, since blocks that pool frees during capture are handed to arrays outside the graph.

A graph is a real recording, not a re-run of Python: every operation on device arrays during
capture (ufuncs, array functions, copies, `__setitem__`, kernels) is stored with its argument
arrays and its result array; `launch` repeats exactly those operations on exactly that memory.
So host state read during capture (a learning rate, a Python branch) is frozen into the graph,
as on a GPU. The stand-in runs each operation once during capture too (NumPy needs the values
to go on); results that only the graph writes are overwritten with NaN at `end_capture`, so
code that reads them before the first launch fails here as it would on a GPU.
"""

from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from tests import fake_cupy
from tests.kernels.host_compiled import HostKernel

CUBLAS = "calling cuBLAS API during stream capture is currently unsupported"
_BLAS = {"matmul", "dot", "vdot", "inner", "tensordot", "einsum"}


class State:
    """Where capture stands: the capturing stream, its recording, the allocator in use."""

    def __init__(self) -> None:
        self.capturing: Stream | None = None
        self.ops: list[tuple[Any, tuple, dict, Any]] = []
        self.fresh: list[np.ndarray] = []  # arrays the recorded operations allocated
        self.depth = 0
        self.allocator: Any = None
        self.stack: list[Stream] = []
        self.refused: list[str] = []
        self.captures = 0  # captures ended so far


STATE = State()


def _refuse(what: str, exc: type = RuntimeError) -> None:
    if STATE.capturing is not None and STATE.depth == 0:
        STATE.refused.append(what)
        raise exc(what)


def recorded(fn: Any) -> Any:
    """`fn` as one graph node: run it, and while capturing keep it for replay."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if STATE.capturing is None or STATE.depth:
            return fn(*args, **kwargs)
        if STATE.allocator is None:
            STATE.refused.append("default pool")
            raise RuntimeError("fake_graph: work captured with CuPy's default memory pool")
        STATE.depth += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            STATE.depth -= 1
        inputs = _arrays((args, kwargs))
        fresh = [r for r in _outputs(result)
                 if not any(np.may_share_memory(r, a) for a in inputs)]
        STATE.ops.append((fn, args, kwargs, result))
        STATE.fresh.extend(fresh)
        return result
    return call


def _arrays(obj: Any) -> list[np.ndarray]:
    """Every array inside nested tuples, lists and dicts."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        obj = tuple(obj.values())
    if isinstance(obj, (tuple, list)):
        return [a for item in obj for a in _arrays(item)]
    return []


def _outputs(result: Any) -> list[np.ndarray]:
    items = result if isinstance(result, tuple) else (result,)
    return [r for r in items if isinstance(r, np.ndarray)]


class Graph:
    """The recorded operations; `launch` repeats them in order on the same memory."""

    def __init__(self, ops: list[tuple[Any, tuple, dict, Any]]) -> None:
        self.ops = ops
        self.launches = 0

    def launch(self, stream: Any = None) -> None:
        if STATE.capturing is not None:
            raise RuntimeError("fake_graph: launch while capturing")
        STATE.depth += 1
        try:
            for fn, args, kwargs, result in self.ops:
                fresh = fn(*args, **kwargs)
                for old, new in zip(_outputs(result), _outputs(fresh), strict=True):
                    if old is not new:
                        np.copyto(old.view(np.ndarray), np.asarray(new).view(np.ndarray))
        finally:
            STATE.depth -= 1
        self.launches += 1

    def upload(self, stream: Any = None) -> None:
        return None


class Stream(fake_cupy.Stream):
    """A stream that can be made current (`with stream:`) and captured."""

    def __enter__(self) -> Stream:
        STATE.stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        STATE.stack.pop()

    def begin_capture(self, mode: Any = None) -> None:
        if not self.non_blocking:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if STATE.capturing is not None:
            raise RuntimeError("fake_graph: a capture is already running")
        STATE.capturing, STATE.ops, STATE.fresh = self, [], []

    def end_capture(self) -> Graph:
        if STATE.capturing is not self:
            raise RuntimeError("fake_graph: this stream is not capturing")
        ops, STATE.capturing, STATE.ops = STATE.ops, None, []
        STATE.captures += 1
        for r in STATE.fresh:  # memory the capture allocated: written by a launch only
            if r.dtype.kind == "f":
                r.view(np.ndarray).fill(np.nan)
        STATE.fresh = []
        return Graph(ops)

    def is_capturing(self) -> bool:
        return STATE.capturing is self


def get_current_stream() -> Stream:
    return STATE.stack[-1] if STATE.stack else NULL


NULL = Stream()


class MemoryPool:
    """A private pool. The stand-in allocates with NumPy, so `total_bytes` is what a test sets:
    `grow_on_capture` bytes more after each capture."""

    def __init__(self) -> None:
        self.bytes = 0
        self.grow_on_capture = 0

    def malloc(self, size: int) -> Any:
        raise AssertionError("the stand-in allocates with NumPy")

    def total_bytes(self) -> int:
        return self.bytes + self.grow_on_capture * STATE.captures


@contextlib.contextmanager
def using_allocator(allocator: Any = None):
    saved, STATE.allocator = STATE.allocator, allocator
    try:
        yield
    finally:
        STATE.allocator = saved


def _patch_array(monkeypatch: Any) -> None:
    """Record or refuse DeviceArray's operations while a stream captures."""
    cls = fake_cupy.DeviceArray
    ufunc = cls.__array_ufunc__

    def array_ufunc(self, uf, method, *inputs, **kwargs):
        if uf.__name__ in _BLAS:
            _refuse(CUBLAS, NotImplementedError)
        return recorded(ufunc)(self, uf, method, *inputs, **kwargs)

    monkeypatch.setattr(cls, "__array_ufunc__", array_ufunc)
    for name in ("__setitem__", "__getitem__", "fill", "copy", "astype", "argmax", "reshape",
                 "ravel", "flatten"):
        monkeypatch.setattr(cls, name, recorded(getattr(np.ndarray, name)))
    for name in ("get", "set", "item", "tolist", "__float__", "__int__", "__bool__",
                 "__index__"):
        method = getattr(cls, name)

        def refusing(self, *a, _m=method, _n=name, **k):
            _refuse(f"the current stream is capturing, so synchronous API calls ({_n}) "
                    "are not allowed")
            return _m(self, *a, **k)
        monkeypatch.setattr(cls, name, refusing)
    device_function = fake_cupy._device_function

    def device_function_(func):
        inner = device_function(func)
        name = getattr(func, "__name__", "")

        def call(*args, **kwargs):
            if name in _BLAS:
                _refuse(CUBLAS, NotImplementedError)
            if name in ("asarray", "array") and any(
                    isinstance(a, np.ndarray) and not isinstance(a, cls) for a in args):
                _refuse("the current stream is capturing, so H2D transfers are not allowed")
            return recorded(inner)(*args, **kwargs)
        return call

    monkeypatch.setattr(fake_cupy, "_device_function", device_function_)


class _RefusingRandom:
    """cupy.random: cuRAND refuses capture."""

    def __init__(self, random: Any) -> None:
        self._random = random

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._random, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            _refuse("cuRAND during stream capture", NotImplementedError)
            return attr(*args, **kwargs)
        return call


class RawKernel(HostKernel):
    """cupy.RawKernel (its parameters, compared with CuPy's in tests/cupy_real), run on the
    host; a launch while capturing is recorded."""

    def __init__(self, code: str, name: str, options: tuple = (), backend: str = "nvrtc",
                 translate_cucomplex: bool = False, *, enable_cooperative_groups: bool = False,
                 jitify: bool = False) -> None:
        super().__init__(code, name)

    __call__ = recorded(HostKernel.__call__)


def install(monkeypatch: Any, cp: Any) -> State:
    """Give the stand-in `cp` streams that capture, graphs, pools and raw kernels."""
    STATE.__init__()
    _patch_array(monkeypatch)
    kernel_call = cp.ElementwiseKernel.__call__
    monkeypatch.setattr(cp.ElementwiseKernel, "__call__", recorded(kernel_call))
    cp.RawKernel = RawKernel
    cp.random = _RefusingRandom(cp.random)
    runtime = SimpleNamespace(getDeviceCount=lambda: 1,
                              streamIsCapturing=lambda ptr: STATE.capturing is not None)
    cp.cuda = SimpleNamespace(Stream=Stream, Event=fake_cupy.Event, Graph=Graph,
                              MemoryPool=MemoryPool, using_allocator=using_allocator,
                              get_current_stream=get_current_stream, runtime=runtime)
    return STATE
