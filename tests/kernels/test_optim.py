"""Fused optimizer kernels: NumPy twins vs plain formulas."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import close
from tests.kernels.helpers import OPTIM, _optim_inputs


@pytest.mark.parametrize("label", sorted(OPTIM))
@pytest.mark.parametrize("with_scratch", [True, False])
def test_optim_twin_matches_formula(label, with_scratch):
    fn, ref, n_state, kw = OPTIM[label]
    p, g, state = _optim_inputs(n_state)
    g_before = g.copy()
    expected = [p.astype(np.float64), *(s.astype(np.float64) for s in state)]
    for _ in range(3):
        expected = ref(expected[0], g.astype(np.float64), *expected[1:], **kw)
        scratch = (np.empty_like(p), np.empty_like(p)) if with_scratch else None
        fn(p, g, *state, **kw, scratch=scratch)
    for actual, want in zip([p, *state], expected, strict=True):
        close(actual, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g, g_before)
