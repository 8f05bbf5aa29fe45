"""Sequential: a stack of layers with one flat parameter and one flat gradient buffer."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gpunet import backend, serialization
from gpunet.layers import Layer


class Sequential:
    """Layers applied in order. `device` is "auto" | "cpu" | "gpu".

    All parameters live in one contiguous array (`flat_params`) and all gradients in another
    (`flat_grads`); each layer's `params`/`grads` entries are views into them, so an optimizer
    updates the whole model with a handful of whole-array operations.
    """

    def __init__(self, layers: list[Layer], device: str = "auto",
                 input_shape: tuple[int, ...] | None = None) -> None:
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be a gpunet Layer, "
                                f"got {type(layer).__name__}")
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        self.layers = layers
        self.input_shape = tuple(input_shape) if input_shape is not None else _guess_input(layers)
        self.device = backend.resolve_device(device)
        self.xp = backend.get_xp(self.device)
        self.stop_training = False
        self.loss = self.optimizer = None
        self.metrics: list[str] = []
        self._place()

    # -- placement and the flat buffers ----------------------------------------------------
    def _place(self) -> None:
        xp = self.xp
        for layer in self.layers:
            layer.to(xp)
            layer.input_grad = True
        self.layers[0].input_grad = False  # nobody needs dC/d(input) of the model
        entries = [(layer, k) for layer in self.layers for k in layer.params]
        total = sum(int(np.prod(layer.params[k].shape)) for layer, k in entries)
        self.flat_params = xp.zeros(total, dtype=backend.floatx())
        self.flat_grads = xp.zeros(total, dtype=backend.floatx())
        self._views: list[tuple[Layer, str, Any]] = []
        offset = 0
        for layer, k in entries:
            p = layer.params[k]
            n = int(np.prod(p.shape))
            view = self.flat_params[offset:offset + n].reshape(p.shape)
            view[...] = p
            layer.params[k] = view
            layer.grads[k] = self.flat_grads[offset:offset + n].reshape(p.shape)
            self._views.append((layer, k, view))
            offset += n

    def check_flat(self) -> None:
        """Re-link parameters a user replaced (rather than assigned into) to the flat buffer."""
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

    # -- the two passes --------------------------------------------------------------------
    def forward(self, x: Any, training: bool = True) -> Any:
        out = x
        for layer in self.layers:
            out = layer.forward(out, training=training)
        return out

    __call__ = forward

    def backward(self, dy: Any) -> None:
        """Back-propagate dC/d(output), filling every layer's grads (and `flat_grads`)."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)

    # -- description -----------------------------------------------------------------------
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

    def set_weights(self, arrays: dict[str, Any]) -> None:
        for i, layer in enumerate(self.layers):
            for k, p in layer.params.items():
                key = f"layer{i}.{k}"
                if key not in arrays:
                    raise ValueError(f"set_weights: missing {key} for {layer!r}")
                if tuple(arrays[key].shape) != tuple(p.shape):
                    raise ValueError(f"set_weights: {key} for {layer!r} expected shape "
                                     f"{tuple(p.shape)}, got {tuple(arrays[key].shape)}")
                p[...] = backend.to_xp(arrays[key], self.xp)

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture (JSON) and weights to one `.npz`, atomically."""
        serialization.write_npz(path, self.weights(), {"architecture": self.architecture()})

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

    def evaluate(self, x: Any, y: Any, batch_size: int = 1024,
                 workers: int | str = "auto") -> dict[str, float]:
        from gpunet.training import evaluate

        return evaluate(self, x, y, batch_size=batch_size, workers=workers)

    def predict(self, x: Any, batch_size: int = 1024, workers: int | str = "auto") -> np.ndarray:
        from gpunet.training import predict

        return predict(self, x, batch_size=batch_size, workers=workers)


def _guess_input(layers: list[Layer]) -> tuple[int, ...] | None:
    first = layers[0]
    if hasattr(first, "in_features"):
        return (first.in_features,)
    return None

