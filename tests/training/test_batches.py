"""Mini-batches: `DeviceStream` (pinned double buffering on a copy stream) yields exactly the
host batches, checked against a strict stand-in for CuPy's streams here and on a real GPU."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import gpunet as gn
from gpunet.training import batches as batch_mod
from tests import fake_cupy


@pytest.fixture(params=["fake", pytest.param("cupy", marks=pytest.mark.gpu)])
def cp(request, monkeypatch):
    if request.param == "cupy":
        if not gn.gpu_available():
            pytest.skip("no usable GPU: " + gn.backend.gpu_status()[1])
        return gn.backend._import_cupy()
    fake, fake_x = fake_cupy.module()
    monkeypatch.setitem(sys.modules, "cupyx", fake_x)
    return fake


def data(y_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.random((1000, 7), dtype=np.float32)
    y = rng.integers(0, 5, (1000, *y_shape)).astype(np.int32)
    return x, y


@pytest.mark.parametrize("y_shape", [(), (3,)], ids=["labels", "2-D targets"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_device_stream_matches_host_batches(cp, y_shape, shuffle):
    x, y = data(y_shape)
    stream = batch_mod.DeviceStream(x, y, 128, cp)
    for epoch in range(2):  # the second epoch reuses the double buffers
        order = np.random.default_rng(epoch).permutation(1000) if shuffle else None
        host = list(batch_mod.HostBatches(x, y, 128).epoch(order))
        device = [(xd.get(), yd.get()) for xd, yd in stream.epoch(order)]
        assert len(device) == len(host) == 8  # the last batch holds 104 rows
        for (xd, yd), (xh, yh) in zip(device, host, strict=True):
            np.testing.assert_array_equal(xd, xh)
            np.testing.assert_array_equal(yd, yh)


def test_leaving_an_epoch_early_waits_for_the_copy_in_flight(cp):
    x, y = data(())
    stream = batch_mod.DeviceStream(x, y, 128, cp)
    batches = stream.epoch(None)
    next(batches)  # batch 1 is being copied now
    batches.close()  # as when training stops mid-epoch (a callback, NaN, Ctrl-C)
    if isinstance(stream._copy_stream, fake_cupy.Stream):
        assert stream._copy_stream.pending == 0
    else:
        assert stream._copy_stream.done
