"""The BCa interval's lean path (``correlation._bca``: the finite values and
their ties counted in one kernel, numpy's quantile without its argument
handling) equals the plain numpy it replaced, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri

from analysis._kernels import finite_ties
from analysis.correlation import (
    CONFIDENCE,
    N_BOOT,
    TIE_TOLERANCE,
    _bca,
    _quantiles,
)


def _bca_reference(boot, jack, estimate):
    """``_bca`` as it was: numpy masks and np.quantile."""
    boot = boot[np.isfinite(boot)]
    if boot.size < 0.9 * N_BOOT:
        return None
    tie = np.abs(boot - estimate) <= TIE_TOLERANCE * (1.0 + abs(estimate))
    below = (np.sum((boot < estimate) & ~tie) + 0.5 * np.sum(tie)) / boot.size
    alpha = (1 - CONFIDENCE) / 2
    if not 0 < below < 1 or not np.all(np.isfinite(jack)):
        q = (alpha, 1 - alpha)
    else:
        z0 = float(ndtri(below))
        d = jack.mean() - jack
        denom = 6.0 * float((d * d).sum()) ** 1.5
        accel = float((d**3).sum()) / denom if denom > 0 else 0.0
        z = ndtri(np.array([alpha, 1 - alpha]))
        q = tuple(ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    lo, hi = np.quantile(boot, q)
    return float(lo), float(hi)


def _values(seed: int, n: int, decimals: int, zeros: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(size=n), decimals)  # few decimals: many ties
    if zeros:
        v[rng.random(n) < 0.2] = 0.0
    return v


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2500),
    decimals=st.sampled_from([0, 1, 2, 15]),
    zeros=st.booleans(),
    q=st.one_of(
        st.tuples(st.floats(0, 1), st.floats(0, 1)),
        st.just((0.025, 0.975)),
        st.just((0.0, 1.0)),
    ),
)
def test_quantiles_are_numpys_bit_for_bit(seed, n, decimals, zeros, q):
    v = _values(seed, n, decimals, zeros)
    want = np.quantile(v, q)
    got = np.array(_quantiles(v.copy(), q))
    assert got.tobytes() == want.tobytes()


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    decimals=st.sampled_from([1, 2, 15]),
    n_bad=st.sampled_from([0, 1, 150, 250]),
    at_estimate=st.integers(0, 300),
    n_jack=st.sampled_from([8, 43, 60]),
    jack_nan=st.booleans(),
)
def test_bca_equals_the_numpy_masks_and_quantile(
    seed, decimals, n_bad, at_estimate, n_jack, jack_nan
):
    # resampled statistics with NaN/inf (degenerate resamples), many equal to
    # the estimate up to rounding (ties), and a jackknife with or without NaN
    rng = np.random.default_rng(seed)
    estimate = float(np.round(rng.uniform(-0.9, 0.9), decimals))
    boot = np.clip(np.round(estimate + 0.2 * rng.normal(size=N_BOOT), decimals), -1, 1)
    boot[rng.integers(0, N_BOOT, at_estimate)] = estimate * (1 + 1e-12)
    boot[rng.integers(0, N_BOOT, n_bad)] = rng.choice([np.nan, np.inf], n_bad)
    jack = estimate + 0.01 * rng.normal(size=n_jack)
    if jack_nan:
        jack[0] = np.nan
    want = _bca_reference(boot.copy(), jack, estimate)
    got = _bca(boot.copy(), jack, estimate)
    if want is None:
        assert got is None
    else:
        assert np.array(got).tobytes() == np.array(want).tobytes()


def test_finite_ties_counts_as_the_masks():
    rng = np.random.default_rng(5)
    boot = np.round(rng.normal(size=3000), 1)
    boot[::7] = np.nan
    boot[::11] = -np.inf
    estimate = 0.1
    tol = TIE_TOLERANCE * (1.0 + abs(estimate))
    finite = np.empty(boot.size)
    m, below, tie = finite_ties(boot, estimate, tol, finite)
    kept = boot[np.isfinite(boot)]
    ties = np.abs(kept - estimate) <= tol
    assert m == kept.size and tie == ties.sum() > 0
    assert below == ((kept < estimate) & ~ties).sum()
    np.testing.assert_array_equal(finite[:m], kept)
