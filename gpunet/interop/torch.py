"""A `Sequential` to and from a PyTorch `nn.Sequential` of the same layers, weights copied.

Layouts: a torch Linear weight is (out, in), a gpunet Dense weight (in, out), so it is
transposed; Conv2d weights are (out, in, kh, kw) in both. Both libraries take NCHW images and
flatten them in (C, H, W) order, so Flatten needs no permutation. Each layer class has a
translator in `TO_TORCH` (by gpunet class name) and `FROM_TORCH` (by torch class name); a layer
without one is refused by name and index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpunet import backend, layers
from gpunet.architecture import rng_kept
from gpunet.model import Sequential


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError("gpunet.interop torch translation needs PyTorch: "
                          "pip install torch") from exc
    return torch


def _tensor(torch: Any, array: Any) -> Any:
    """A float32 torch tensor with its own copy of `array` (host or device)."""
    return torch.tensor(np.ascontiguousarray(backend.to_numpy(array)), dtype=torch.float32)


def _pool_kwargs(layer: Any) -> dict[str, Any]:
    return {"kernel_size": tuple(layer.pool), "stride": tuple(layer.stride)}


def _dense_to(torch: Any, layer: Any) -> Any:
    lin = torch.nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        lin.weight.copy_(_tensor(torch, layer.params["W"]).T)
        lin.bias.copy_(_tensor(torch, layer.params["b"]))
    return lin


def _conv_to(torch: Any, layer: Any) -> Any:
    conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, tuple(layer.kernel),
                           stride=tuple(layer.stride), padding=tuple(layer.padding))
    with torch.no_grad():
        conv.weight.copy_(_tensor(torch, layer.params["W"]))
        conv.bias.copy_(_tensor(torch, layer.params["b"]))
    return conv


TO_TORCH: dict[str, Callable[[Any, Any], Any]] = {
    "Dense": _dense_to,
    "Conv2D": _conv_to,
    "MaxPool2D": lambda torch, layer: torch.nn.MaxPool2d(**_pool_kwargs(layer)),
    "AvgPool2D": lambda torch, layer: torch.nn.AvgPool2d(**_pool_kwargs(layer)),
    "L2Pool2D": lambda torch, layer: torch.nn.LPPool2d(2, **_pool_kwargs(layer)),
    "Flatten": lambda torch, layer: torch.nn.Flatten(),
    "Dropout": lambda torch, layer: torch.nn.Dropout(layer.rate),
    "ReLU": lambda torch, layer: torch.nn.ReLU(),
    "LeakyReLU": lambda torch, layer: torch.nn.LeakyReLU(layer.alpha),
    "Sigmoid": lambda torch, layer: torch.nn.Sigmoid(),
    "Tanh": lambda torch, layer: torch.nn.Tanh(),
    "Softmax": lambda torch, layer: torch.nn.Softmax(dim=1),
}


def to_torch(model: Sequential) -> Any:
    """The model as a `torch.nn.Sequential` (float32, on the CPU) computing the same function."""
    torch = _torch()
    modules = []
    for i, layer in enumerate(model.layers):
        fn = TO_TORCH.get(type(layer).__name__)
        if fn is None:
            raise ValueError(f"to_torch: layer {i} {layer!r} has no PyTorch translation "
                             f"(translatable: {', '.join(sorted(TO_TORCH))})")
        modules.append(fn(torch, layer))
    return torch.nn.Sequential(*modules)


def _host(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().to(dtype=_torch().float32).numpy()


def _refuse(i: int, module: Any, why: str) -> None:
    raise ValueError(f"from_torch: module {i} {module!r}: {why}")


def _linear_from(i: int, m: Any) -> tuple[Any, dict[str, np.ndarray]]:
    weights = {"W": _host(m.weight).T}
    weights["b"] = _host(m.bias) if m.bias is not None else np.zeros(m.out_features, np.float32)
    return layers.Dense(m.in_features, m.out_features), weights


def _conv_padding(i: int, m: Any) -> tuple[int, int]:
    """Conv2d padding as gpunet's (ph, pw): 'valid' is 0, 'same' works for odd kernels."""
    if m.padding == "valid":
        return 0, 0
    if m.padding == "same":
        if any(k % 2 == 0 for k in m.kernel_size):
            _refuse(i, m, "padding='same' with an even kernel pads unevenly; gpunet pads evenly")
        return m.kernel_size[0] // 2, m.kernel_size[1] // 2
    return tuple(m.padding)


def _conv_from(i: int, m: Any) -> tuple[Any, dict[str, np.ndarray]]:
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        _refuse(i, m, "gpunet's Conv2D has groups=1, dilation=1 and zero padding only")
    layer = layers.Conv2D(m.in_channels, m.out_channels, tuple(m.kernel_size),
                          stride=tuple(m.stride), padding=_conv_padding(i, m))
    bias = _host(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    return layer, {"W": _host(m.weight), "b": bias}


def _pool_from(cls: type, lp: bool = False) -> Callable[[int, Any], tuple[Any, dict]]:
    def make(i: int, m: Any) -> tuple[Any, dict]:
        pads = getattr(m, "padding", 0)
        if pads not in (0, (0, 0)) or m.ceil_mode or getattr(m, "dilation", 1) not in (1, (1, 1)):
            _refuse(i, m, "gpunet pools without padding or dilation and floors the output size")
        if getattr(m, "return_indices", False) or getattr(m, "divisor_override", None):
            _refuse(i, m, "return_indices and divisor_override have no gpunet equivalent")
        if lp and float(m.norm_type) != 2.0:
            _refuse(i, m, f"only norm_type=2 (gpunet's L2Pool2D), got {m.norm_type}")
        stride = m.stride if m.stride is not None else m.kernel_size
        return cls(m.kernel_size, stride=stride), {}
    return make


def _flatten_from(i: int, m: Any) -> tuple[Any, dict]:
    if m.start_dim != 1 or m.end_dim != -1:
        _refuse(i, m, "only Flatten(start_dim=1, end_dim=-1) (gpunet's Flatten)")
    return layers.Flatten(), {}


def _softmax_from(i: int, m: Any) -> tuple[Any, dict]:
    if m.dim not in (1, -1):
        _refuse(i, m, "gpunet's Softmax runs over the feature axis of (N, features): dim=1")
    return layers.Softmax(), {}


def _from_table() -> dict[str, Callable[[int, Any], tuple[Any, dict]]]:
    table = {
        "Linear": _linear_from, "Conv2d": _conv_from,
        "MaxPool2d": _pool_from(layers.MaxPool2D), "AvgPool2d": _pool_from(layers.AvgPool2D),
        "Flatten": _flatten_from, "Softmax": _softmax_from,
        "Dropout": lambda i, m: (layers.Dropout(m.p), {}),
        "ReLU": lambda i, m: (layers.ReLU(), {}),
        "LeakyReLU": lambda i, m: (layers.LeakyReLU(m.negative_slope), {}),
        "Sigmoid": lambda i, m: (layers.Sigmoid(), {}),
        "Tanh": lambda i, m: (layers.Tanh(), {}),
    }
    if hasattr(layers, "L2Pool2D"):
        table["LPPool2d"] = _pool_from(layers.L2Pool2D, lp=True)
    return table


def _leaves(module: Any) -> list[Any]:
    """The modules of a (possibly nested) nn.Sequential, in order."""
    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, got {type(module).__name__}")
    out: list[Any] = []
    for child in module:
        out += _leaves(child) if isinstance(child, torch.nn.Sequential) else [child]
    return out


def from_torch(module: Any, input_shape: tuple[int, ...] | None = None,
               device: str = "auto") -> Sequential:
    """A `Sequential` computing what the `torch.nn.Sequential` `module` computes (in eval mode).

    `input_shape` (one sample, e.g. (1, 28, 28)) is needed for a model starting with Conv2d
    for `summary()` and input checks; a model starting with Linear infers it."""
    table = _from_table()
    built, weights = [], {}
    with rng_kept():  # building layers draws init weights; don't move the global RNG
        for i, m in enumerate(_leaves(module)):
            fn = table.get(type(m).__name__)
            if fn is None:
                raise ValueError(f"from_torch: module {i} {m!r} has no gpunet translation "
                                 f"(translatable: {', '.join(sorted(table))})")
            layer, params = fn(i, m)
            built.append(layer)
            weights.update({f"layer{i}.{k}": v for k, v in params.items()})
    model = Sequential(built, device=device, input_shape=input_shape)
    model.set_weights(weights)
    return model
