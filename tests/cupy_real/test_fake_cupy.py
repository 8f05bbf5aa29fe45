"""The CuPy stand-in (tests/fake_cupy.py) takes the parameters the installed CuPy takes, so a
call the real CuPy refuses (a misspelt keyword, one too many arguments) fails on it too."""

from __future__ import annotations

import inspect

import pytest

from tests import fake_cupy
from tests.cupy_real.cupy_uses import signature


def _shape(sig: inspect.Signature) -> list[tuple[str, inspect._ParameterKind, bool]]:
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in sig.parameters.values() if p.name != "self"]


def _real(cupy, cupyx, path: str):
    obj = cupyx if path.startswith("cupyx.") else cupy
    for attr in path.removeprefix("cupyx.").split("."):
        obj = getattr(obj, attr)
    return obj


@pytest.mark.parametrize("path", fake_cupy.signatures())
def test_the_stand_in_takes_cupys_parameters(real_cupy, path):
    import cupyx

    real = signature(_real(real_cupy, cupyx, path))
    fake = signature(fake_cupy.signatures()[path])
    assert real is not None and fake is not None
    assert _shape(fake) == _shape(real), f"{path}: stand-in {fake}, CuPy {real}"


def test_the_stand_in_refuses_a_misspelt_keyword():
    with pytest.raises(TypeError):
        fake_cupy.Stream(nonblocking=True)
    with pytest.raises(TypeError):
        fake_cupy.Event(disable_timings=True)
