"""A NumPy interpreter of the ElementwiseKernel operation language that runs the CUDA sources."""

from __future__ import annotations

import re

import numpy as np

from tests.helpers import host
from tests.kernels.helpers import (
    ACTIVATIONS,
    OPTIM,
    POOLING,
    _activation_inputs,
    _optim_inputs,
)

_DECL = re.compile(r"^T\s+(\w+)\s*=")
_TERNARY = re.compile(r"^(\w+)\s*=\s*(.+?)\s*\?\s*(.+?)\s*:\s*(.+)$")


class InterpretedKernel:
    """Stands in for cupy.ElementwiseKernel: turns the C operation into Python over NumPy
    arrays (declarations, compound assignments, `c ? a : b`, T(x) casts, sqrt, exp)."""

    built: list[str] = []

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel",
                 reduce_dims: bool = True, preamble: str = "", no_return: bool = False,
                 return_tuple: bool = False, **kwargs: object) -> None:
        if preamble or no_return or return_tuple or kwargs:
            raise NotImplementedError("the interpreter runs plain operations only")
        self.ins = [a.split()[-1] for a in in_params.split(",")]
        self.outs = [a.split()[-1] for a in out_params.split(",")]
        lines = [s.strip() for s in operation.replace("\n", ";").split(";") if s.strip()]
        lines = [_DECL.sub(r"\1 =", s) for s in lines]
        lines = [_TERNARY.sub(r"\1 = np.where(\2, \3, \4)", s) for s in lines]
        self.code = compile("\n".join(lines), name, "exec")
        InterpretedKernel.built.append(name.removeprefix("gpunet_"))

    def __call__(self, *args):
        # As CuPy: all inputs, then either no outputs or all of them, as arrays (never None).
        if len(args) not in (len(self.ins), len(self.ins) + len(self.outs)):
            raise TypeError(f"Wrong number of arguments for {self.code.co_filename!r}")
        if any(a is None for a in args):
            raise TypeError("Unsupported type <class 'NoneType'>")
        ins, outs = list(args[:len(self.ins)]), list(args[len(self.ins):])
        dtype = ins[0].dtype
        outs = outs or [np.empty_like(ins[0]) for _ in self.outs]
        ns = {"np": np, "sqrt": np.sqrt, "exp": np.exp,
              "T": lambda x: x.astype(dtype) if isinstance(x, np.ndarray) else dtype.type(x)}
        ns.update(zip(self.ins + self.outs, ins + outs, strict=True))
        with np.errstate(divide="ignore", invalid="ignore"):  # as CUDA: no floating traps
            exec(self.code, ns)
        for name, out in zip(self.outs, outs, strict=True):
            out[...] = ns[name]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _run_all(to_device, kernels_for=None):
    """Run every activation, pooling and optimizer kernel on device copies; return the host
    results."""
    results = {}
    for name, (fn, n, _) in {**ACTIVATIONS, **POOLING}.items():
        results[name] = [host(fn(*(to_device(x) for x in _activation_inputs(n))))]
    for label, (fn, _, n_state, kw) in OPTIM.items():
        p, g, state = _optim_inputs(n_state)
        p, g, state = to_device(p), to_device(g), [to_device(s) for s in state]
        for _ in range(3):
            fn(p, g, *state, **kw)
        results[label] = [host(a) for a in (p, *state)]
    return results
