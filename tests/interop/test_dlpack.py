"""get_weights / set_weights with any DLPack array (PyTorch, NumPy, JAX, CuPy), without a copy
where the array already lives on the model's device."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet as gn
from gpunet import backend
from gpunet.interop import dlpack
from tests.helpers import host
from tests.interop.helpers import inputs

torch = pytest.importorskip("torch")
L = gn.layers


def small(device: str = "cpu") -> gn.Sequential:
    return gn.Sequential([L.Conv2D(1, 2, 3), L.ReLU(), L.Flatten(), L.Dense(2 * 4 * 4, 3)],
                         device=device, input_shape=(1, 6, 6))


def torch_weights(model: gn.Sequential, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(tuple(v.shape), generator=g) for k, v in model.get_weights().items()}


def test_set_weights_takes_torch_tensors():
    model = small()
    new = torch_weights(model)
    model.set_weights(new)
    for key, t in new.items():
        np.testing.assert_array_equal(model.get_weights()[key], t.numpy())


def test_a_cpu_tensor_is_read_in_place_not_copied():
    t = torch.randn(5, 7)
    for view in (t, t.T, t[1:, ::2]):  # strided views too
        a = dlpack.to_host(view)
        assert np.shares_memory(a, t.numpy())
        np.testing.assert_array_equal(a, view.numpy())


def test_parameters_that_require_grad_and_transposed_linear_weights_are_accepted():
    model = gn.Sequential([L.Dense(4, 3)], device="cpu")
    lin = torch.nn.Linear(4, 3)
    assert lin.weight.requires_grad
    model.set_weights({"layer0.W": lin.weight.T, "layer0.b": lin.bias})
    np.testing.assert_array_equal(model.get_weights()["layer0.W"], lin.weight.detach().T)
    assert dlpack.to_host(lin.weight).ctypes.data == lin.weight.data_ptr()


def test_get_weights_are_views_that_torch_shares():
    model = small()
    x = inputs(model, 4)
    before = model.predict(x, workers=1)
    w = torch.from_dlpack(model.get_weights()["layer3.b"])
    w += 1.0  # in place, through torch, on the model's own memory
    np.testing.assert_array_equal(host(model.layers[3].params["b"]), w.numpy())
    np.testing.assert_allclose(model.predict(x, workers=1), before + 1.0, atol=1e-5)
    assert np.shares_memory(w.numpy(), model.flat_params)


class OnlyDLPack:
    """An array from some other library (as JAX's): nothing but the DLPack protocol."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape = a.shape

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_any_object_speaking_dlpack_is_accepted_in_place():
    model = small()
    arrays = {k: OnlyDLPack(np.full(v.shape, 0.5, np.float32))
              for k, v in model.get_weights().items()}
    assert np.shares_memory(dlpack.to_host(arrays["layer0.W"]), arrays["layer0.W"]._a)
    model.set_weights(arrays)
    assert (model.flat_params == 0.5).all()


def test_jax_arrays_when_jax_is_installed():
    jnp = pytest.importorskip("jax.numpy")
    model = gn.Sequential([L.Dense(2, 2)], device="cpu")
    model.set_weights({"layer0.W": jnp.eye(2), "layer0.b": jnp.ones(2)})
    np.testing.assert_array_equal(model.get_weights()["layer0.W"], np.eye(2))


def test_other_dtypes_are_cast_and_unreadable_ones_named():
    model = gn.Sequential([L.Dense(2, 2)], device="cpu")
    model.set_weights({"layer0.W": torch.full((2, 2), 1 / 3, dtype=torch.float64),
                       "layer0.b": torch.zeros(2, dtype=torch.float16)})
    assert model.get_weights()["layer0.W"][0, 0] == np.float32(1 / 3)
    with pytest.raises(TypeError, match="set_weights: layer0.W: cannot read Tensor"):
        model.set_weights({"layer0.W": torch.ones(2, 2, dtype=torch.bfloat16),
                           "layer0.b": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"layer0.W .* expected shape \(2, 2\), got \(3, 2\)"):
        model.set_weights({"layer0.W": torch.ones(3, 2), "layer0.b": torch.zeros(2)})


def test_a_gpu_model_takes_cpu_tensors_and_gives_device_arrays(fake_gpu):
    model = small(device="gpu")
    new = torch_weights(model, seed=3)
    model.set_weights(new)
    for key, value in model.get_weights().items():
        assert isinstance(value, fake_gpu.ndarray)
        np.testing.assert_array_equal(host(value), new[key].numpy())
    assert isinstance(dlpack.to_host(model.get_weights()["layer0.W"]), np.ndarray)


@pytest.mark.gpu
def test_cuda_tensors_and_cupy_arrays_are_read_in_place_on_the_gpu():
    usable, reason = backend.gpu_status()
    if not usable:
        pytest.skip(f"no usable GPU: {reason}")
    cp = backend._import_cupy()
    a = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    assert dlpack.to_xp(a, cp).data.ptr == a.data.ptr
    if torch.cuda.is_available():
        t = torch.randn(2, 3, device="cuda")
        assert dlpack.to_xp(t, cp).data.ptr == t.data_ptr()
        np.testing.assert_array_equal(dlpack.to_host(t), t.cpu().numpy())
    model = small(device="gpu")
    model.set_weights({k: cp.ones(v.shape, cp.float32) for k, v in model.get_weights().items()})
    assert float(model.flat_params.sum()) == model.num_params
