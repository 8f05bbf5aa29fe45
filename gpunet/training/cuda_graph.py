"""Part (a) of the training step (forward, loss, backward: `Sequential.compute_gradients`) as
one CUDA graph; (b) `reduce_gradients` and (c) the optimizer step run after it, outside.

At batch 128 the models are launch-bound on a large GPU: some 40-60 kernels per step, each a few
microseconds of Python and driver time. `CapturedStep` records part (a) once with CuPy's stream
capture (`Stream.begin_capture` / `end_capture`) and then replays it with one `Graph.launch()`
per batch. It has the model's step interface (`train_step`, `test_step`, `predict_step`), so
`fit` only swaps its runner for it. What makes the step capturable:

- static buffers: each batch is copied (device to device, outside the graph) into one input
  and one label buffer that the graph reads; the graph's output and mean loss are arrays it
  writes at every launch, which `train_step` returns to the loop's Tally;
- no cuBLAS: CuPy refuses cuBLAS during capture, so every product runs gpunet's GEMM kernel
  (`gpunet.kernels.gemm.kernel_products`); no cuRAND: each Dropout layer reads uniform noise
  from a buffer filled before each launch, in the same order the eager step draws it;
- no allocation and no host synchronisation inside the graph: two eager warm-ups of part (a) on
  the capture stream, with a private memory pool, leave every buffer the step needs in that
  pool (the pool's size before and after capture is compared: `grew_during_capture`); the
  private pool is used by nothing else, so no array outside the graph lands in its memory;
- (b) and (c) stay outside, in `model.apply_gradients`: the `reduce_gradients` hook (a
  data-parallel all-reduce, say) runs eagerly before every optimizer step exactly as in the
  eager step, and the optimizer's scalars (schedules, Adam's bias corrections) change each step.

A batch of another size (the last one of an epoch) runs the model's eager `train_step`. Where
capture fails, a RuntimeWarning says why and every later batch runs eagerly. Switch:
`fit(..., cuda_graph=True)` (off by default: not yet measured on a GPU).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from gpunet.kernels import gemm
from gpunet.layers.dropout import Dropout

WARMUP = 2  # eager steps before capture: the second sees the caches the captured one sees


class CapturedStep:
    """A model's step interface whose `train_step`, for batches of exactly `batch_size`,
    replays part (a) as a CUDA graph, then runs (b) and (c) eagerly."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size
        self.cp = self.xp = cp = model.xp  # xp: evaluate_arrays asks a runner for it
        self.stream = cp.cuda.Stream(non_blocking=True)  # capture is refused on the null stream
        self.pool = cp.cuda.MemoryPool()
        self.graph: Any = None
        self.x = self.y = self.out = self.loss = None
        self.noise: list[tuple[Dropout, Any]] = []
        self.failed = ""  # why the step runs eagerly, once capture failed
        self.grew_during_capture = 0  # bytes the private pool grew by during capture
        self.launches = 0

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One training step: (a) by the graph where it can, else eagerly; then (b) and (c)."""
        if not self._launch(x, y):
            return self.model.train_step(x, y)
        self.model.apply_gradients(self.loss)  # (b) reduce_gradients, (c) optimizer: eager
        return self.out, self.loss

    def test_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        return self.model.test_step(x, y)

    def predict_step(self, x: Any) -> Any:
        return self.model.predict_step(x)

    def _launch(self, xb: Any, yb: Any) -> bool:
        """Run part (a) on one batch through the graph (capturing it the first time); False
        when this batch must run eagerly instead (another size, or capture failed)."""
        if self.failed or len(xb) != self.batch_size:
            return False
        if self.x is None:
            problem = self._allocate(xb, yb)
            if problem:
                self._give_up(problem)
                return False
        if xb.dtype != self.x.dtype or yb.dtype != self.y.dtype or yb.shape != self.y.shape:
            return False
        self.x[...] = xb  # device-to-device copies on the current stream, outside the graph
        self.y[...] = yb
        if self.graph is None:
            try:
                self._capture()
            except Exception as exc:  # noqa: BLE001 - any failure means: run eagerly
                self._give_up(f"{type(exc).__name__}: {exc}")
                return False
        for _, buf in self.noise:  # drawn after a capture, so a failed one draws nothing
            buf[...] = self.cp.random.random(buf.shape, dtype=buf.dtype)
        self.graph.launch(stream=self.cp.cuda.get_current_stream())
        self.launches += 1
        return True

    def _allocate(self, xb: Any, yb: Any) -> str:
        """The static input, label and noise buffers; a reason when the model cannot be
        captured, else ""."""
        cp, shape = self.cp, tuple(xb.shape[1:])
        for layer in self.model.layers:
            if layer.uses_rng and not isinstance(layer, Dropout):
                return f"{layer!r} draws random numbers inside the step (only Dropout can " \
                       "take them from a buffer filled outside the graph)"
            if isinstance(layer, Dropout) and layer.rate:
                dtype = np.dtype(self.model.flat_params.dtype)
                self.noise.append((layer, cp.zeros((self.batch_size, *shape), dtype=dtype)))
            shape = tuple(layer.output_shape(shape))
        self.x = cp.empty(xb.shape, dtype=xb.dtype)
        self.y = cp.empty(yb.shape, dtype=yb.dtype)
        return ""

    def _body(self) -> tuple[Any, Any]:
        """What the graph holds: part (a) on the static buffers; (output, mean loss)."""
        for layer, buf in self.noise:
            layer.noise = buf
        try:
            return self.model.compute_gradients(self.x, self.y)
        finally:
            for layer, _ in self.noise:
                layer.noise = None

    def _capture(self) -> None:
        """Warm up on the capture stream with the private pool, then capture `_body`."""
        cp, current = self.cp, self.cp.cuda.get_current_stream()
        self.stream.wait_event(current.record())  # the batch copies come first
        try:
            with self.stream, cp.cuda.using_allocator(self.pool.malloc), \
                    gemm.kernel_products():
                for _ in range(WARMUP):
                    self._body()
                before = self.pool.total_bytes()
                self.stream.begin_capture()
                try:
                    self.out, self.loss = self._body()
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.stream.end_capture()
                    raise
                self.graph = self.stream.end_capture()
                self.grew_during_capture = self.pool.total_bytes() - before
        finally:  # also after a failure: the eager step must not race the warm-up
            current.wait_event(self.stream.record())

    def _give_up(self, why: str) -> None:
        self.failed = why
        self.graph = None
        warnings.warn(f"fit(cuda_graph=True): the training step could not be captured as a "
                      f"CUDA graph ({why}); training continues with the eager step",
                      RuntimeWarning, stacklevel=4)


def graphed(model: Any, runner: Any, enabled: bool, batch_size: int) -> Any:
    """What runs `fit`'s steps: `runner` itself, or with `cuda_graph=True` on a GPU a
    CapturedStep of the model (on the CPU a warning says the switch is ignored)."""
    if not enabled:
        return runner
    if model.on_cpu:
        warnings.warn("fit(cuda_graph=True) needs a GPU; ignored on the CPU", RuntimeWarning,
                      stacklevel=3)
        return runner
    if runner is not model:
        warnings.warn(f"fit(cuda_graph=True): the steps are run by {type(runner).__name__}, "
                      "not by the model; ignored", RuntimeWarning, stacklevel=3)
        return runner
    return CapturedStep(model, batch_size)
