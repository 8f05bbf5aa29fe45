"""Every kernel gpunet defines, compiled by NVIDIA's NVRTC exactly as CuPy builds it (CuPy's
own code generator, options and compile path), for sm_80 (A100) and sm_90 (H100/H200), in
float32 and float64 where the kernel takes a type; no GPU needed (tests/cupy_real/nvrtc.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.cupy_real import nvrtc
from tests.cupy_real.kernel_sites import find_kernels

SPECS = find_kernels().specs
FLOATS = (np.float32, np.float64)


@pytest.mark.parametrize("arch", nvrtc.ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_kernel_compiles(real_cupy, spec, arch):
    kernel = nvrtc.build(spec)
    typed = spec.kind in ("ElementwiseKernel", "ReductionKernel") and nvrtc.takes_dtype(kernel)
    for dtype in FLOATS if typed else (None,):
        cubin = nvrtc.compile_spec(spec, dtype, arch)
        assert cubin[:4] == b"\x7fELF", f"{spec.name} {dtype}: not a cubin"
        assert b".text." + spec.name.encode() + b"\0" in cubin  # the kernel itself


def test_leaky_relu_backward_compiles_in_float16(real_cupy):
    """CuPy's half multiplies to float: `c ? dy : alpha * dy` was ambiguous for float16."""
    (spec,) = [s for s in SPECS if s.name == "gpunet_leaky_relu_bwd"]
    assert "T(alpha * dy)" in spec.args[2]
    assert nvrtc.compile_spec(spec, np.float16, "90")[:4] == b"\x7fELF"


def test_a_broken_kernel_fails_to_compile(real_cupy):
    from cupy.cuda.compiler import CompileException

    bad = real_cupy.ElementwiseKernel("T x", "T y", "y = x ? : ;", "gpunet_broken")
    with pytest.raises(CompileException, match="expected an expression"):
        nvrtc.compile_elementwise(bad, np.float32, "90")
    wrong_name = real_cupy.RawKernel('extern "C" __global__ void f(float* x) {}', "g")
    with pytest.raises(LookupError, match="'g'"):
        nvrtc.compile_raw(wrong_name, "90")


def test_reduction_and_raw_module_compile(real_cupy):
    """The kinds gpunet does not use yet compile the same way (so a new one is covered)."""
    l2 = real_cupy.ReductionKernel("T x", "T y", "x * x", "a + b", "y = sqrt(a)", "0", "l2")
    for dtype in FLOATS:
        assert nvrtc.compile_reduction(l2, dtype, "80")[:4] == b"\x7fELF"
    module = real_cupy.RawModule(
        code="template<typename T> __global__ void twice(T* x) { x[threadIdx.x] *= 2; }",
        name_expressions=["twice<float>", "twice<double>"])
    assert nvrtc.compile_raw(module, "90")[:4] == b"\x7fELF"


def test_compiled_with_cupys_options_and_headers_from_the_wheels(real_cupy, monkeypatch):
    """The options are CuPy's (-ftz=true: results differ from NumPy in the last bits, so
    GPU-vs-CPU comparisons use tolerances), the headers are CuPy's wheel's and the CUDA
    runtime's of NVRTC's own major version (not, say, a CUDA 13 toolkit in /usr/local)."""
    from cupy.cuda import compiler
    from cupy_backends.cuda.libs import nvrtc as libnvrtc

    seen: list[tuple] = []
    real = compiler._NVRTCProgram.compile
    monkeypatch.setattr(compiler._NVRTCProgram, "compile",
                        lambda self, options=(), log_stream=None:
                        seen.append(tuple(options)) or real(self, options, log_stream))
    nvrtc.compile_spec(SPECS[0], np.float32, "90")
    options = seen[-1]
    assert "-ftz=true" in options and "-arch=sm_90" in options and "--std=c++17" in options
    includes = [Path(o[2:]) for o in options if o.startswith("-I")]
    cupy_include = Path(real_cupy.__file__).parent / "_core" / "include"
    assert cupy_include in includes
    cudart = [p for p in includes if (p / "cuda_runtime_api.h").is_file()]
    assert cudart, f"no CUDA runtime headers among {includes}"
    version = re.search(r"#define CUDART_VERSION\s+(\d+)",
                        (cudart[0] / "cuda_runtime_api.h").read_text()).group(1)
    assert int(version) // 1000 == libnvrtc.getVersion()[0], (cudart[0], version)
