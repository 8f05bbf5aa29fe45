"""Every CuPy/cupyx attribute and keyword gpunet's GPU path uses exists in the installed CuPy
and accepts the call as written (read from the source: tests/cupy_real/cupy_uses.py); gpunet's
kernel functions pass CuPy's own argument checks on real cupy.ndarrays (over host memory)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO
from tests.cupy_real.cupy_uses import check, find_uses
from tests.kernels.helpers import ACTIVATIONS, OPTIM, _activation_inputs, _optim_inputs

FILES = sorted(REPO.glob("gpunet/**/*.py")) + sorted(REPO.glob("scripts/**/*.py"))


def test_the_walk_finds_the_gpu_paths_cupy_calls():
    found = {str(u).split(": ", 1)[1] for u in find_uses(FILES, REPO)}
    for call in ("cupy.cuda.Stream(non_blocking=)", "cupy.cuda.Event(disable_timing=)",
                 "<object>.set(_, stream=)", "cupyx.empty_pinned(_, _)", "cupy.random.seed(_)",
                 "cupy.get_default_memory_pool()", "cupy.ElementwiseKernel(_, _, _, _)"):
        assert call in found


def test_every_cupy_use_exists_with_its_keywords(real_cupy):
    import cupyx

    uses = find_uses(FILES, REPO)
    problems = [f"{u}: {why}" for u in uses if (why := check(u, real_cupy, cupyx))]
    assert problems == []


def test_the_check_refuses_what_cupy_refuses(real_cupy, tmp_path):
    import cupyx

    bad = tmp_path / "bad.py"
    bad.write_text("def f(cp, cupyx, a, s):\n"
                   "    cp.cuda.Stream(nonblocking=True)\n"
                   "    cupyx.empty_pinned_like_this(3)\n"
                   "    a.set(a, steam=s)\n"
                   "    cp.cuda.Event(disable_timing=True, blocking=True)\n")
    uses = find_uses([bad], tmp_path)
    problems = {u.where: check(u, real_cupy, cupyx) for u in uses}
    assert "unexpected keyword argument 'nonblocking'" in problems["bad.py:2"]
    assert "does not exist" in problems["bad.py:3"]
    assert "'steam'" in problems["bad.py:4"]
    assert "'blocking'" in problems["bad.py:5"]


def host_backed(cupy, a: np.ndarray):
    """A real cupy.ndarray over host memory: CuPy's checks run, the launch cannot."""
    a = np.ascontiguousarray(a)
    mem = cupy.cuda.UnownedMemory(a.ctypes.data, a.nbytes, a, device_id=0)
    return cupy.ndarray(a.shape, a.dtype, cupy.cuda.MemoryPointer(mem, 0))


def _reaches_the_device(call) -> None:
    from cupy_backends.cuda.api.runtime import CUDARuntimeError

    with pytest.raises(CUDARuntimeError):  # past CuPy's argument checks, stopped by no driver
        call()


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_kernels_pass_cupys_argument_checks(real_cupy, name, monkeypatch):
    from gpunet.kernels import _registry

    monkeypatch.setattr(_registry, "_cache", {})
    fn, n, _ = ACTIVATIONS[name]
    args = [host_backed(real_cupy, x) for x in _activation_inputs(n)]
    _reaches_the_device(lambda: fn(*args))
    _reaches_the_device(lambda: fn(*args, out=host_backed(real_cupy, np.empty_like(
        _activation_inputs(n)[0]))))


@pytest.mark.parametrize("label", OPTIM)
def test_optimizer_kernels_pass_cupys_argument_checks(real_cupy, label, monkeypatch):
    from gpunet.kernels import _registry

    monkeypatch.setattr(_registry, "_cache", {})
    fn, _, n_state, kw = OPTIM[label]
    p, g, state = _optim_inputs(n_state)
    arrays = [host_backed(real_cupy, a) for a in (p, g, *state)]
    _reaches_the_device(lambda: fn(*arrays, **kw))


def test_a_wrong_call_is_refused_before_the_device(real_cupy, monkeypatch):
    from gpunet.kernels import _registry

    monkeypatch.setattr(_registry, "_cache", {})
    kernel = _registry.elementwise("relu_bwd_probe", "T dy, T x", "T dx", "dx = dy")
    x = host_backed(real_cupy, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="Wrong number of arguments"):
        kernel(x)
    with pytest.raises(TypeError, match="Wrong arguments"):
        kernel(x, x, steam=None)


def test_auto_falls_back_where_cupy_imports_but_no_gpu_exists(real_cupy, monkeypatch):
    import warnings

    import gpunet as gn
    from gpunet import backend

    assert backend._import_cupy() is real_cupy
    backend.gpu_status.cache_clear()
    monkeypatch.setattr(backend._settings, "warned_fallback", False)
    try:
        usable, reason = backend.gpu_status()
        assert not usable and "CuPy is installed but" in reason
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = gn.Sequential([gn.layers.Dense(3, 2)], device="auto")
        assert model.device == "cpu" and model.xp is np
        assert any("falling back to NumPy" in str(w.message) for w in caught)
        with pytest.raises(backend.DeviceError, match="no GPU is usable"):
            gn.Sequential([gn.layers.Dense(3, 2)], device="gpu")
    finally:
        backend.gpu_status.cache_clear()

