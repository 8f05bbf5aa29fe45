"""L2 pooling kernels: NumPy twins vs plain formulas (the CUDA sources are checked against the
twins in test_registry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import close
from tests.kernels.helpers import POOLING, _activation_inputs


@pytest.mark.parametrize("name", sorted(POOLING))
def test_pooling_twin_matches_formula(name):
    fn, n, ref = POOLING[name]
    xs = _activation_inputs(n)  # the last input has zeros: y = 0 for l2pool_scale
    want = ref(*(x.astype(np.float64) for x in xs))
    got = fn(*xs)
    close(got, want, rtol=1e-6, atol=1e-7)
    assert np.isfinite(got).all()
    if name != "l2pool_scale":
        assert got is xs[-1]  # added into its last argument, in place


def test_l2pool_scale_writes_into_a_callers_buffer_and_zeroes_it_where_y_is_zero():
    dy, y = _activation_inputs(2)
    out = np.full_like(dy, 7.0)
    assert POOLING["l2pool_scale"][0](dy, y, out=out) is out
    assert (out[y <= 0] == 0).all()
    close(out, POOLING["l2pool_scale"][2](dy, y), rtol=1e-6, atol=1e-7)
