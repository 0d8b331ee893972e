"""The artifact kernels' faster paths give their plain originals' values to
the bit (numpy's medians, the row-by-row sums)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._artifact_kernels import _median_of, mad_columns, median_abs_step


def _values(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal(n) * 30
    if kind == "ties":  # few distinct values: whole buckets of equal ones
        return np.round(rng.standard_normal(n) * 2)
    if kind == "outliers":  # a huge range: most values in one bucket
        v = rng.standard_normal(n)
        v[rng.random(n) < 0.02] *= 1e12
        return v
    if kind == "halfnormal":  # |steps|: piled up at zero
        return np.abs(rng.standard_normal(n)) * 1e-3
    return np.full(n, 1.5)  # all equal


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2000),
    kind=st.sampled_from(["normal", "ties", "outliers", "halfnormal", "equal"]),
)
def test_counting_median_is_numpys_median_to_the_bit(seed, n, kind):
    rng = np.random.default_rng(seed)
    v = _values(rng, n, kind)
    scratch = np.empty(2 * n, dtype=np.int32)
    got = _median_of(v.copy(), v.min(), v.max(), scratch)
    assert got == np.median(v)


def test_counting_median_with_infinities_and_tiny_ranges():
    rng = np.random.default_rng(3)
    for v in (
        np.r_[rng.standard_normal(300), np.inf],
        np.r_[rng.standard_normal(301), -np.inf, np.inf],
        1.0 + np.arange(400) * 2.0**-52,  # a range of a few ulps
        np.arange(500) * 5e-324,  # subnormal: the scale overflows
    ):
        scratch = np.empty(2 * v.size, dtype=np.int32)
        assert _median_of(v.copy(), v.min(), v.max(), scratch) == np.median(v)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 1500),
    kind=st.sampled_from(["normal", "ties", "outliers", "halfnormal", "equal"]),
)
def test_median_columns_kernels_are_numpys_medians(seed, n, kind):
    rng = np.random.default_rng(seed)
    x = np.column_stack([_values(rng, n, kind) for _ in range(3)])
    skip = rng.random((n, 3)) < 0.3
    skip[:, 0] = False
    got = np.empty(3)
    mad_columns(x, skip, got)
    for c in range(3):
        v = x[~skip[:, c], c]
        want = 1.4826 * np.median(np.abs(v - np.median(v))) if v.size > 8 else np.inf
        assert got[c] == want
    median_abs_step(x, got)
    assert np.array_equal(got, np.median(np.abs(np.diff(x.T, axis=1)), axis=1))
    x[n // 2, 1] = np.nan
    median_abs_step(x, got)
    assert np.isnan(got[1])
