"""The float32 rounding bound the matmul-form tests compare within (tests/models).

An entry that is a sum of K products, computed in float32 in any order, lies within
(K−1)·u·Σ|terms| ≤ K·eps·Σ|terms| of the exact sum (u = eps/2); Σ|terms| comes from the
same operation on |inputs| in float64.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def assert_within_sum_bounds(case, reference_name, entries):
    """``entries``: (name, reference, value, Σ|terms|, K) per compared tensor.

    Each value must be within K·eps·Σ|terms| of its reference, and the bound must not be
    vacuous: with random signs |value| ~ √K·term while Σ|terms| ~ K·term, so the bound is
    ~√K·eps of the values; it must stay below 1 % of them (medians over nonzero entries).
    """
    for name, reference, value, abs_sum, k in entries:
        assert reference.shape == value.shape, name
        tolerance = k * EPS32 * abs_sum
        excess = np.abs(reference - value) - tolerance
        assert np.all(excess <= 0), (
            f"{case} {name}: max |{reference_name} - matmul| "
            f"{np.abs(reference - value).max():.3g} exceeds K·eps·Σ|terms| (K={k}) by "
            f"{excess.max():.3g}"
        )
        nonzero = np.abs(reference) > 0
        assert np.median(tolerance[nonzero]) < 1e-2 * np.median(np.abs(reference)[nonzero]), name
