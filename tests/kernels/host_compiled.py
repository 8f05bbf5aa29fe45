"""gpunet's raw CUDA kernels compiled as C++ for the CPU (g++), to check their index maths.

The kernels (gpunet.kernels._raw) use only blockIdx/blockDim/threadIdx/gridDim, so the same
source compiles for the host once those are globals and `__global__` is empty. `launch` runs
every block and every thread of a grid one after another, as a serial GPU would; `HostKernel`
stands in for `cupy.RawKernel` (same call: grid, block, args), taking NumPy arrays and NumPy
scalars, so code written for CuPy runs these kernels unchanged on the stand-in."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gpunet.kernels import _raw

_HEADER = """\
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __restrict__
"""
_libs: dict[tuple[str, str], Any] = {}


def available() -> bool:
    """Whether a C++ compiler is here (tests skip without one)."""
    return shutil.which("g++") is not None


def _params(name: str) -> list[tuple[str, str]]:
    """The kernel's parameters as (C type, name)."""
    out = []
    for p in _raw.SOURCES[name][1].split(","):
        ctype, pname = p.strip().rsplit(" ", 1)
        out.append((ctype, pname))
    return out


def host_source(name: str, dtype: Any) -> str:
    """The kernel's CUDA source plus a host launcher looping over blocks and threads."""
    fn = _raw.function_name(name, dtype)
    params = _params(name)
    decl = ", ".join(f"{t} {n}" for t, n in params)
    call = ", ".join(n for _, n in params)
    return (_HEADER + _raw.source(name, dtype) + f"""
extern "C" void host_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, {decl}) {{
    gridDim = {{gx, gy, gz}}; blockDim = {{bx, by, bz}};
    for (unsigned z = 0; z < gz; ++z) for (unsigned y = 0; y < gy; ++y)
    for (unsigned x = 0; x < gx; ++x) for (unsigned tz = 0; tz < bz; ++tz)
    for (unsigned ty = 0; ty < by; ++ty) for (unsigned tx = 0; tx < bx; ++tx) {{
        blockIdx = {{x, y, z}}; threadIdx = {{tx, ty, tz}};
        {fn}({call});
    }}
}}
""")


def _build(name: str, dtype: Any) -> Any:
    key = (name, np.dtype(dtype).name)
    if key in _libs:
        return _libs[key]
    src = host_source(name, dtype)
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "gpunet-host-kernels"
    folder.mkdir(exist_ok=True)
    lib = folder / f"{name}-{digest}.so"
    if not lib.exists():
        cpp = folder / f"{name}-{digest}.cpp"
        cpp.write_text(src)
        tmp = folder / f"{name}-{digest}.{id(key)}.tmp"
        subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(tmp),
                        str(cpp)], check=True, capture_output=True, text=True)
        tmp.replace(lib)  # atomic: parallel test runs never load half a library
    handle = ctypes.CDLL(str(lib)).host_launch
    handle.restype = None
    types = [ctypes.c_uint] * 6
    for ctype, _ in _params(name):
        types.append(ctypes.c_void_p if "*" in ctype else ctypes.c_int)
    handle.argtypes = types
    _libs[key] = handle
    return handle


class HostKernel:
    """A stand-in for `cupy.RawKernel(source, function_name)` of one of gpunet's raw kernels,
    running its host-compiled twin: `kernel(grid, block, args)`."""

    def __init__(self, code: str, name: str) -> None:
        for kname in _raw.SOURCES:
            for dtype in _raw.TYPES:
                if _raw.function_name(kname, dtype) == name:
                    if _raw.source(kname, dtype) != code:
                        raise ValueError(f"HostKernel: {name}'s source differs from gpunet's")
                    self.kernel, self.dtype = kname, dtype
                    return
        raise ValueError(f"HostKernel: {name} is not one of gpunet's raw kernels")

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        grid = (*grid, 1, 1)[:3]
        block = (*block, 1, 1)[:3]
        params = _params(self.kernel)
        if len(args) != len(params):
            raise TypeError(f"{self.kernel}: {len(params)} arguments expected, got {len(args)}")
        values = []
        for (ctype, pname), a in zip(params, args, strict=True):
            if "*" in ctype:
                if not isinstance(a, np.ndarray) or a.dtype != self.dtype:
                    raise TypeError(f"{self.kernel}: {pname} must be a {self.dtype} array")
                values.append(a.ctypes.data)
            else:
                if not isinstance(a, np.int32):
                    raise TypeError(f"{self.kernel}: {pname} must be np.int32, got {type(a)}")
                values.append(int(a))
        _build(self.kernel, self.dtype)(*grid, *block, *values)


def launch(name: str, dtype: Any, grid: tuple[int, ...], block: tuple[int, ...],
           *args: Any) -> None:
    """Run kernel `name` for `dtype` on the host over NumPy arrays and np.int32 scalars."""
    HostKernel(_raw.source(name, dtype), _raw.function_name(name, dtype))(grid, block, args)
