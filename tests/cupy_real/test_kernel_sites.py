"""The kernel walk (no CuPy needed): it resolves every kernel gpunet defines, finds every kernel
the package builds when run, and resolves the patterns a new kernel may use."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

from gpunet.kernels import _registry, activations, optim
from tests.cupy_real.kernel_sites import find_kernels
from tests.kernels.interpreted import InterpretedKernel, _run_all


def test_every_kernel_site_in_gpunet_resolves():
    found = find_kernels()
    assert found.unresolved == []
    assert found.specs, "the walk found no kernel at all"
    for spec in found.specs:
        assert spec.where.startswith("gpunet/"), spec


def test_the_walk_finds_every_kernel_gpunet_builds_when_run(monkeypatch):
    """Run every kernel function through the interpreter: what the package builds at run time
    is a subset of what the walk found statically (same names, same sources)."""
    built: dict[str, tuple] = {}

    def record(in_params, out_params, operation, name):
        built[name] = (in_params, out_params, operation)
        return InterpretedKernel(in_params, out_params, operation, name)

    monkeypatch.setattr(_registry, "_import_cupy", lambda: type("cp", (), {
        "ElementwiseKernel": staticmethod(record)}))
    monkeypatch.setattr(_registry, "_cache", {})
    for module in (activations, optim):
        monkeypatch.setattr(module, "is_gpu_array", lambda a: True)
    _run_all(np.array)
    walked = {s.name: s.args[:3] for s in find_kernels().specs if s.kind == "ElementwiseKernel"}
    assert built, "nothing was built"
    for name, source in built.items():
        assert walked.get(name) == source, name


PACKAGE = {
    "__init__.py": "",
    "raw.py": '''
        import cupy as cp
        SRC = 'extern "C" __global__ void k(float* x) {}'
        def get():
            return cp.RawKernel(SRC, "k", options=("-O3",))
        ''',
    "factory.py": '''
        from cupy import ElementwiseKernel
        OPS = {"double": "y = x + x", "square": "y = x * x"}
        def make(name, op, ignored):
            return ElementwiseKernel("T x", "T y", op, name)
        def launch(name, array):
            return make(name, OPS[name], array)(array)
        def literal(array):
            return make("negate", "y = -x", array)
        ''',
    "loops.py": '''
        import cupy
        SIZES = (3, 5)
        def build():
            out = []
            for k in SIZES:
                code = f"#define K {k}\\n" + 'extern "C" __global__ void conv(float* x) {}'
                out.append(cupy.RawModule(code=code, options=("-std=c++17",)))
            return out
        ''',
    "opaque.py": '''
        import cupy
        def build(user_code):
            return cupy.RawKernel(user_code, "f")
        def caller(x):
            return build(x.source)
        ''',
}


@pytest.fixture
def walk_pkg(tmp_path, monkeypatch):
    root = tmp_path / "walkpkg"
    root.mkdir()
    for name, text in PACKAGE.items():
        (root / name).write_text(textwrap.dedent(text))
    fake = type(sys)("cupy")
    for kind in ("ElementwiseKernel", "RawKernel", "RawModule", "ReductionKernel"):
        setattr(fake, kind, object)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("walkpkg")
    for name in [n for n in sys.modules if n.startswith("walkpkg")]:
        del sys.modules[name]


def test_the_walk_resolves_constants_factories_dict_keys_loops_and_locals(walk_pkg):
    found = find_kernels(walk_pkg)
    specs = {(s.kind, s.name): s for s in found.specs}
    raw = specs["RawKernel", "k"]
    assert dict(raw.kwargs) == {"options": ("-O3",)} and raw.where == "walkpkg/raw.py:5"
    for name, op in (("double", "y = x + x"), ("square", "y = x * x"), ("negate", "y = -x")):
        assert specs["ElementwiseKernel", name].args == ("T x", "T y", op, name)
    modules = [s for s in found.specs if s.kind == "RawModule"]
    assert sorted(dict(s.kwargs)["code"].split("\n")[0] for s in modules) == [
        "#define K 3", "#define K 5"]
    assert len(found.specs) == 6


def test_the_walk_reports_what_only_run_time_knows(walk_pkg):
    (problem,) = find_kernels(walk_pkg).unresolved
    assert problem.startswith("walkpkg/opaque.py:6 -> walkpkg/opaque.py:4")


def test_the_walk_finds_every_raw_kernel_for_every_type():
    """The RawKernel templates of gpunet.kernels._raw (registered by the modules the walk
    imports) are each found, once per element type: each is compiled by test_nvrtc.py."""
    from gpunet.kernels import _raw

    walked = {s.name for s in find_kernels().specs if s.kind == "RawKernel"}
    expected = {_raw.function_name(n, t) for n in _raw.SOURCES for t in _raw.TYPES}
    assert len(expected) >= 6 and walked == expected
