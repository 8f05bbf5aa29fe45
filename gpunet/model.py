"""Sequential: a stack of layers with one flat parameter and one flat gradient buffer."""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import numpy as np

from gpunet import backend, serialization
from gpunet.checks import check, is_int
from gpunet.interop import dlpack
from gpunet.layers import Layer


class Sequential:
    """Layers applied in order. `device` is "auto" | "cpu" | "gpu".

    All parameters live in one contiguous array (`flat_params`) and all gradients in another
    (`flat_grads`); each layer's `params`/`grads` entries are views into them, so an optimizer
    updates the whole model with a handful of whole-array operations.

    One training step (`train_step`) is three parts, each one method: (a) `compute_gradients`
    (forward, loss, backward into `flat_grads`), (b) `reduce_gradients` (the identity; the one
    place where data-parallel training combines gradients) and (c) the optimizer step over the
    flat buffers (`apply_gradients` runs b and c). `fit`, `evaluate` and `predict` only call
    `train_step`, `test_step` and `predict_step` (gpunet.training).
    """

    def __init__(self, layers: list[Layer], device: str = "auto",
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.layers = _checked_layers(layers)
        self.input_shape = _checked_shape(input_shape) if input_shape is not None else \
            _guess_input(self.layers)
        self.device = backend.resolve_device(device)
        self.xp = backend.get_xp(self.device)
        self.loss: Any = None
        self.optimizer: Any = None
        self.metrics: list[str] = []
        # what the last fit did, written by the training loop and the callbacks
        self.stop_training = False  # a callback sets it to end training after this epoch
        self.stop_reason = ""  # why training stopped early ("" when it ran every epoch)
        self.nonfinite: str | None = None  # what went NaN/inf in the last fit, if anything
        self.history: Any = None  # the History callback of the last fit
        self._place()

    # -- placement and the flat buffers ----------------------------------------------------
    def _place(self) -> None:
        xp = self.xp
        self.on_cpu = backend.is_cpu(xp)
        for layer in self.layers:
            layer.to(xp)
            layer.input_grad = True
        self.layers[0].input_grad = False  # nobody needs dC/d(input) of the model
        total = sum(int(np.prod(p.shape)) for layer in self.layers for p in layer.params.values())
        self.flat_params = xp.zeros(total, dtype=backend.floatx())
        self.flat_grads = xp.zeros(total, dtype=backend.floatx())
        self._views: list[tuple[Layer, str, Any]] = []
        for layer, k, param, grad in _slots(self.layers, self.flat_params, self.flat_grads):
            param[...] = layer.params[k]
            layer.params[k], layer.grads[k] = param, grad
            self._views.append((layer, k, param))
        self._params, self._grads = [self.flat_params], [self.flat_grads]

    def relink_params(self) -> None:
        """Put parameters a user replaced (rather than assigned into) back into the flat buffer,
        so that the optimizer and the checkpoints see them; a no-op when none was replaced."""
        if any(layer.params[k] is not view for layer, k, view in self._views):
            self._place()

    def to(self, device: str) -> Sequential:
        """Move the model to "cpu", "gpu" or "auto"; returns self."""
        self.device = backend.resolve_device(device)
        self.xp = backend.get_xp(self.device)
        self._place()
        if self.optimizer is not None and hasattr(self.optimizer, "to"):
            self.optimizer.to(self.xp)
        return self

    def replica(self, gradients: bool = True) -> Sequential:
        """A model sharing this one's parameters (the same `flat_params`, loss and optimizer)
        that owns its layers' caches and, with `gradients`, its own `flat_grads` (else None).
        CPU threads that share a batch each run one (gpunet.training.shards)."""
        for layer in self.layers:  # nothing pending: no stale cache gets copied
            layer._clear_cache()
        shared = {id(a): a for layer in self.layers
                  for a in (*layer.params.values(), *layer.grads.values())}
        twin = copy.copy(self)
        twin.layers = copy.deepcopy(self.layers, shared)
        twin.flat_grads = self.xp.zeros_like(self.flat_grads) if gradients else None
        twin._grads = [twin.flat_grads]
        if gradients:
            for layer, k, _, grad in _slots(twin.layers, self.flat_params, twin.flat_grads):
                layer.grads[k] = grad
        return twin

    # -- the two passes --------------------------------------------------------------------
    def forward(self, x: Any, training: bool = True) -> Any:
        out = x
        for layer in self.layers:
            out = layer.forward(out, training=training)
        return out

    __call__ = forward

    def backward(self, dy: Any) -> Any:
        """Back-propagate dC/d(output), filling every layer's grads (and `flat_grads`); returns
        dC/d(input), or None when the first layer does not compute it (the default)."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    # -- one step: (a) gradients, (b) reduction, (c) update ----------------------------------
    def compute_gradients(self, x: Any, y: Any, share: float = 1.0) -> tuple[Any, Any]:
        """(a) Forward, loss and backward of one batch: leaves dC/dθ in `flat_grads` and returns
        (output, mean loss as a 0-d device array: reading it is the caller's choice). `share`
        scales the loss gradient: a replica computing part of a batch passes its fraction, so
        that the replicas' gradients add up to the whole batch's."""
        out = self.forward(x, training=True)
        loss, grad = self.loss.forward(out, y)
        if share != 1.0:
            grad *= grad.dtype.type(share)
        self.backward(grad)
        return out, loss

    def reduce_gradients(self, flat_grads: Any) -> bool | None:
        """(b) The one place where gradients computed elsewhere join this step's: the identity.

        Data-parallel training replaces it, per model (`model.reduce_gradients = fn`, with
        fn(flat_grads) summing or averaging in place across processes) or in a subclass. It
        runs once per step on every process, before the optimizer, whatever the loss; returning
        False skips this step's update (gpunet.distributed does, on every process alike, when
        some process's loss was not finite)."""

    def apply_gradients(self, loss: Any) -> None:
        """(b) `reduce_gradients`, then (c) one optimizer step over the flat buffers. On the
        CPU, where reading the loss is free, a non-finite loss gets no step (the training loop
        reports it); on the GPU the loop finds it the next time it reads the loss."""
        if self.reduce_gradients(self.flat_grads) is False:
            return
        if self.on_cpu and not math.isfinite(loss):
            return
        self.optimizer.step(self._params, self._grads)

    def train_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One training step on one batch; returns (output, mean loss as a 0-d device array)."""
        out, loss = self.compute_gradients(x, y)
        self.apply_gradients(loss)
        return out, loss

    def test_step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Output and mean loss (0-d device array) of one batch, in inference mode."""
        out = self.predict_step(x)
        return out, self.loss.forward(out, y)[0]

    def predict_step(self, x: Any) -> Any:
        """Output of one batch in inference mode (no caches for backward, no dropout)."""
        return self.forward(x, training=False)

    # -- description -----------------------------------------------------------------------
    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """One output sample's shape (no batch axis), when the input shape is known."""
        shape = self.input_shape
        if shape is None:
            return None
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return tuple(shape)

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    def summary(self) -> str:
        rows = [("Layer (type)", "Output shape", "Params")]
        shape: tuple[int, ...] | None = self.input_shape
        for i, layer in enumerate(self.layers):
            if shape is not None:
                shape = layer.output_shape(shape)
            out = "(None, " + ", ".join(map(str, shape)) + ")" if shape is not None else "?"
            rows.append((f"{i}: {layer!r}", out, f"{layer.num_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        line = "-" * (sum(widths) + 4)
        fmt = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}"
        lines = [fmt.format(*rows[0]), line, *(fmt.format(*r) for r in rows[1:]), line,
                 f"Total params: {self.num_params:,}  (device: {self.device}, "
                 f"{backend.floatx().name})"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Sequential({self.layers!r}, device={self.device!r})"

    # -- persistence -----------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        return {"layers": [{"class": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers],
                "input_shape": list(self.input_shape) if self.input_shape else None}

    def weights(self) -> dict[str, Any]:
        return {f"layer{i}.{k}": p for i, layer in enumerate(self.layers)
                for k, p in layer.params.items()}

    def get_weights(self) -> dict[str, Any]:
        """The weights by name ("layer0.W"): views of the model's own buffer, which any DLPack
        consumer (`torch.from_dlpack`, `np.from_dlpack`) shares without a copy."""
        return self.weights()

    def set_weights(self, arrays: dict[str, Any]) -> None:
        """Copy weights in by name; NumPy, CuPy or any array with `__dlpack__` (PyTorch, JAX),
        read in place where it already lives on the model's device."""
        for i, layer in enumerate(self.layers):
            for k, p in layer.params.items():
                key = f"layer{i}.{k}"
                if key not in arrays:
                    raise ValueError(f"set_weights: missing {key} for {layer!r}")
                if tuple(arrays[key].shape) != tuple(p.shape):
                    raise ValueError(f"set_weights: {key} for {layer!r} expected shape "
                                     f"{tuple(p.shape)}, got {tuple(arrays[key].shape)}")
                p[...] = dlpack.to_xp(arrays[key], self.xp, f"set_weights: {key}")

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture (JSON) and weights to one `.npz` (or `.safetensors`), atomically.

        Refuses NaN/inf weights (naming the entry): `load_model` would refuse that file."""
        if not bool(self.xp.isfinite(self.flat_params).all()):
            bad = next(k for k, p in self.weights().items() if not bool(self.xp.isfinite(p).all()))
            raise ValueError(f"save {os.fspath(path)}: weight {bad} holds NaN or inf (training "
                             "diverged?); a model file with non-finite weights cannot be loaded")
        meta = {"architecture": self.architecture()}
        if str(path).endswith(".safetensors"):
            from gpunet.interop import safetensors

            safetensors.write(path, self.weights(), meta)
        else:
            serialization.write_npz(path, self.weights(), meta)

    def export(self, path: str | os.PathLike, format: str = "onnx") -> None:
        """Write the model for other runtimes: format "onnx" (needs `gpunet[onnx]`)."""
        if format != "onnx":
            raise ValueError(f"export: format must be 'onnx', got {format!r}")
        from gpunet.interop import onnx

        onnx.export(self, path)

    # -- training (gpunet.training) --------------------------------------------------------
    def compile(self, loss: Any = "crossentropy", optimizer: Any = "adam",
                metrics: list[str] | None = None) -> None:
        from gpunet import losses, optimizers

        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        self.metrics = list(metrics or [])
        for m in self.metrics:
            if m not in ("accuracy",):
                raise ValueError(f"compile: metrics may contain 'accuracy', got {m!r}")

    def fit(self, x: Any, y: Any, epochs: int = 1, batch_size: int = 32, **kwargs: Any):
        from gpunet.training import fit

        return fit(self, x, y, epochs=epochs, batch_size=batch_size, **kwargs)

    def evaluate(self, x: Any, y: Any, batch_size: int = 1024, workers: int | str = "auto",
                 distributed: Any = None) -> dict[str, float]:
        from gpunet.training import evaluate

        return evaluate(self, x, y, batch_size=batch_size, workers=workers,
                        distributed=distributed)

    def predict(self, x: Any, batch_size: int = 1024, workers: int | str = "auto") -> np.ndarray:
        from gpunet.training import predict

        return predict(self, x, batch_size=batch_size, workers=workers)


def _checked_layers(layers: Any) -> list[Layer]:
    """A list of gpunet layers, each instance once: a layer keeps one input and one gradient
    per step, so the same instance twice would silently get a wrong gradient."""
    layers = list(layers)
    if not layers:
        raise ValueError("Sequential: needs at least one layer")
    first: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential: layers[{i}] must be a gpunet Layer, "
                            f"got {type(layer).__name__}")
        if id(layer) in first:
            raise ValueError(f"Sequential: layers[{first[id(layer)]}] and layers[{i}] are the "
                             f"same {layer!r} instance; a layer keeps one input and one gradient "
                             f"per step, so it cannot sit twice in a model (build a second one)")
        first[id(layer)] = i
    return layers


def _checked_shape(shape: Any) -> tuple[int, ...]:
    """One sample's shape as a tuple of Python ints (NumPy integers accepted)."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    check(dims is not None and all(is_int(d) and d >= 1 for d in dims), "Sequential",
          "input_shape", "a tuple of positive ints (one sample, no batch axis)", shape)
    return tuple(int(d) for d in dims)


def _slots(layers: list[Layer], params: Any, grads: Any):
    """(layer, name, parameter view, gradient view) for every parameter, in flat-buffer order:
    the one layout of the flat buffers."""
    offset = 0
    for layer in layers:
        for k, p in layer.params.items():
            n = int(np.prod(p.shape))
            yield (layer, k, params[offset:offset + n].reshape(p.shape),
                   grads[offset:offset + n].reshape(p.shape))
            offset += n


def _guess_input(layers: list[Layer]) -> tuple[int, ...] | None:
    first = layers[0]
    if hasattr(first, "in_features"):
        return (first.in_features,)
    return None

