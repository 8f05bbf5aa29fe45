"""backend: device choice, float precision, the generators and their thread-local streams."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from tests.test_model import contract_mlp


def test_device_gpu_without_gpu_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(gn.backend, "gpu_status", lambda: (False, "CuPy is not installed"))
    with pytest.raises(gn.DeviceError, match="device='gpu'.*CuPy is not installed"):
        contract_mlp("gpu")
    with pytest.warns(RuntimeWarning, match="falling back to NumPy"):
        monkeypatch.setattr(gn.backend._settings, "warned_fallback", False)
        assert contract_mlp("auto").device == "cpu"


def test_bad_device_name():
    with pytest.raises(ValueError, match="device: expected one of"):
        contract_mlp("tpu")


def test_is_cpu_is_the_one_spelling():
    assert backend.is_cpu(np) and backend.is_cpu(gn.Sequential([gn.layers.ReLU()], "cpu").xp)
    assert gn.Sequential([gn.layers.ReLU()], device="cpu").on_cpu


def test_precision_is_scoped_and_restored():
    assert backend.floatx() == np.float32
    with backend.precision(np.float64):
        assert backend.floatx() == np.float64
        assert gn.layers.Dense(2, 2).params["W"].dtype == np.float64
    assert backend.floatx() == np.float32


def test_local_rng_neither_uses_nor_moves_the_main_generator():
    gn.seed(4)
    state = backend.get_rng_state()
    with backend.local_rng(11) as gen:
        assert backend.rng() is gen
        inner = backend.rng().random(3)
        with backend.local_rng(12):
            backend.rng().random(2)
        assert backend.rng() is gen  # the outer block's generator is back
    assert backend.get_rng_state() == state
    np.testing.assert_array_equal(inner, np.random.default_rng(11).random(3))


def test_local_rng_is_per_thread():
    seen = {}

    def draw():
        seen["other"] = backend.rng()

    with backend.local_rng(1) as gen:
        t = threading.Thread(target=draw)
        t.start()
        t.join()
    assert seen["other"] is not gen


def test_rng_state_round_trip():
    gn.seed(9)
    state = backend.get_rng_state()
    a = backend.rng().random(4)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.rng().random(4), a)


def test_to_xp_and_to_numpy_on_the_cpu():
    a = np.arange(3, dtype=np.float64)
    assert backend.to_numpy(a) is a or np.array_equal(backend.to_numpy(a), a)
    assert backend.to_xp(a, np, np.float32).dtype == np.float32
    assert backend.device_of(a) == "cpu" and not backend.is_gpu_array(a)
    with pytest.raises(ValueError, match="device: expected one of"):
        backend.resolve_device("tpu")
