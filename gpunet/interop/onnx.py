"""ONNX export of a `Sequential`, built with the `onnx` package's helper API and checked with
`onnx.checker.check_model(full_check=True)` before it is written.

The graph takes exactly the array `model.predict` takes: (batch, features) for a model that
starts with Dense, (batch, C, H, W) for one that starts with Conv2D (gpunet's public layout is
NCHW, like ONNX's), the batch axis dynamic. Each layer class is translated by the exporter
registered under its class name in `EXPORTERS`; a layer without one is refused by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gpunet import backend
from gpunet.layers import _windows as im
from gpunet.serialization import write_atomic

OPSET = 17  # the oldest opset accepted; LpPool, Softmax(axis) and all used here are older
INPUT, OUTPUT, BATCH = "input", "output", "batch"


class ExportError(ValueError):
    """A model (or one of its layers) that cannot be written as ONNX."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: "
                          "pip install 'gpunet[onnx]'") from exc
    return onnx


class Graph:
    """The nodes and initializers of the graph being built, one layer at a time."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.index = 0  # the layer being translated

    def weight(self, name: str, array: Any) -> str:
        """Add a float32 initializer named `layer{i}.{name}` (the `get_weights` key)."""
        full = f"layer{self.index}.{name}"
        data = np.ascontiguousarray(backend.to_numpy(array), dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(data, full))
        return full

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        """Add one node; its output is named after the layer."""
        out = f"layer{self.index}_{op.lower()}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out],
                                                     name=f"layer{self.index}", **attrs))
        return out


Exporter = Callable[[Graph, Any, str], str]
EXPORTERS: dict[str, Exporter] = {}


def exporter(*names: str) -> Callable[[Exporter], Exporter]:
    """Register a function (graph, layer, input name) → output name for these layer classes."""
    def register(fn: Exporter) -> Exporter:
        for name in names:
            EXPORTERS[name] = fn
        return fn
    return register


def _pair(layer: Any, attr: str, key: str, default: Any = None) -> list[int]:
    """A window setting as a list of 2 ints, from the layer or else its saved config."""
    value = getattr(layer, attr, None)
    if value is None:
        value = layer.get_config().get(key, default)
    return list(im.pair(value, key, type(layer).__name__, 0))


@exporter("Dense")
def _dense(g: Graph, layer: Any, x: str) -> str:
    return g.node("Gemm", [x, g.weight("W", layer.params["W"]), g.weight("b", layer.params["b"])])


@exporter("Conv2D")
def _conv(g: Graph, layer: Any, x: str) -> str:
    ph, pw = _pair(layer, "padding", "padding", 0)
    return g.node("Conv", [x, g.weight("W", layer.params["W"]), g.weight("b", layer.params["b"])],
                  kernel_shape=_pair(layer, "kernel", "kernel_size"),
                  strides=_pair(layer, "stride", "stride", 1), pads=[ph, pw, ph, pw])


def _pool(op: str, **extra: Any) -> Exporter:
    """Pooling without padding, output size floored (ceil_mode 0), as gpunet's pools."""
    def export(g: Graph, layer: Any, x: str) -> str:
        kernel = _pair(layer, "pool", "pool_size")
        stride = _pair(layer, "stride", "stride", layer.get_config().get("pool_size"))
        return g.node(op, [x], kernel_shape=kernel, strides=stride, **extra)
    return export


exporter("MaxPool2D")(_pool("MaxPool"))
exporter("AvgPool2D")(_pool("AveragePool"))
exporter("L2Pool2D")(_pool("LpPool", p=2))  # sqrt of the window's sum of squares


@exporter("Flatten")
def _flatten(g: Graph, layer: Any, x: str) -> str:
    return g.node("Flatten", [x], axis=1)  # NCHW flattened as (C, H, W), as gpunet does


@exporter("Dropout")
def _dropout(g: Graph, layer: Any, x: str) -> str:
    return g.node("Identity", [x])  # inverted dropout: inference is the identity


def _simple(op: str) -> Exporter:
    return lambda g, layer, x: g.node(op, [x])


exporter("ReLU")(_simple("Relu"))
exporter("Sigmoid")(_simple("Sigmoid"))
exporter("Tanh")(_simple("Tanh"))


@exporter("LeakyReLU")
def _leaky(g: Graph, layer: Any, x: str) -> str:
    return g.node("LeakyRelu", [x], alpha=float(layer.alpha))


@exporter("Softmax")
def _softmax(g: Graph, layer: Any, x: str) -> str:
    return g.node("Softmax", [x], axis=1)  # gpunet's Softmax takes (N, features)


def input_dims(model: Any) -> list[int | str]:
    """One sample's dims: the model's input_shape, else what its first layer implies."""
    if model.input_shape is not None:
        return [int(d) for d in model.input_shape]
    first = model.layers[0]
    if hasattr(first, "in_features"):
        return [int(first.in_features)]
    if hasattr(first, "in_channels"):
        return [int(first.in_channels), "height", "width"]
    raise ExportError(f"ONNX export: cannot tell the input shape of a model starting with "
                      f"{first!r}; build it with Sequential(..., input_shape=...)")


def _output_dims(model: Any, dims: list[int | str]) -> list[int | str]:
    """One output sample's dims; named (free) ones where the input has free height and width."""
    shape = tuple(4096 if isinstance(d, str) else d for d in dims)  # a size every window fits
    for layer in model.layers:
        shape = layer.output_shape(shape)
    if any(isinstance(d, str) for d in dims):
        return [f"output_{k + 1}" for k in range(len(shape))]
    return list(shape)


def to_onnx(model: Any, opset: int = OPSET) -> Any:
    """The model as a checked `onnx.ModelProto` (float32, dynamic batch axis)."""
    onnx = _onnx()
    if opset < OPSET:
        raise ExportError(f"ONNX export: opset must be >= {OPSET}, got {opset}")
    graph = Graph(onnx)
    name = INPUT
    for i, layer in enumerate(model.layers):
        fn = EXPORTERS.get(type(layer).__name__)
        if fn is None:
            raise ExportError(f"ONNX export: layer {i} {layer!r} has no ONNX exporter "
                              f"(exportable: {', '.join(sorted(EXPORTERS))})")
        graph.index = i
        name = fn(graph, layer, name)
    graph.nodes.append(onnx.helper.make_node("Identity", [name], [OUTPUT], name="output"))
    dims = input_dims(model)
    out = _output_dims(model, dims)
    f32 = onnx.TensorProto.FLOAT
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, "gpunet",
            [onnx.helper.make_tensor_value_info(INPUT, f32, [BATCH, *dims])],
            [onnx.helper.make_tensor_value_info(OUTPUT, f32, [BATCH, *out])],
            graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="gpunet",
        doc_string="Exported by gpunet; input and output as model.predict takes and returns.")
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.helper.set_model_props(proto, {"gpunet_architecture": json.dumps(model.architecture())})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Any, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the model to `path` as ONNX, atomically; returns the path."""
    proto = to_onnx(model, opset)
    return write_atomic(path, lambda f: f.write(proto.SerializeToString()))
