"""Fused activation kernels: NumPy twins vs plain formulas."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import close
from tests.kernels.helpers import ACTIVATIONS, _activation_inputs


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_twin_matches_formula(name):
    fn, n, ref = ACTIVATIONS[name]
    xs = _activation_inputs(n)
    close(fn(*xs), ref(*(x.astype(np.float64) for x in xs)), rtol=1e-6, atol=1e-7)
    out = np.empty_like(xs[0])
    assert fn(*xs, out=out) is out  # writes into a caller's buffer
    close(out, ref(*(x.astype(np.float64) for x in xs)), rtol=1e-6, atol=1e-7)
