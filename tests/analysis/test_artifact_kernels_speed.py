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


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 1500),
    where=st.floats(0, 1),
    kind=st.sampled_from(["normal", "ties", "outliers", "halfnormal", "equal"]),
)
def test_counting_order_statistic_is_numpys_partition(seed, n, where, kind):
    from analysis._artifact_kernels import _ranked

    rng = np.random.default_rng(seed)
    v = _values(rng, n, kind)
    kth = min(int(where * n), n - 1)
    scratch = np.empty(2 * n, dtype=np.int32)
    first, again = _ranked(v.copy(), kth, False, v.min(), v.max(), scratch)
    assert first == again == np.partition(v, kth)[kth]
    if kth + 1 < n:
        ranked = np.sort(v)
        got = _ranked(v.copy(), kth, True, v.min(), v.max(), scratch)
        assert got == (ranked[kth], ranked[kth + 1])


def _refill_edges_numpy(resid, t, edges_s):
    """``artifact._refill_edges`` as it was, in numpy."""
    for edge in edges_s:
        i = int(np.searchsorted(t, np.array([edge]))[0])
        a, b = i - 2, i + 1
        if a < 0 or b >= resid.shape[0]:
            continue
        for k, row in enumerate((i - 1, i), start=1):
            resid[row] = resid[a] + (resid[b] - resid[a]) * k / 3


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_edge_refill_kernel_is_the_numpy_line(seed, n):
    from analysis.artifact import _refill_edges

    rng = np.random.default_rng(seed)
    t = np.arange(n) / 30_000.0 - 5 / 30_000.0
    resid = rng.standard_normal((n, 4)) * 10.0 ** rng.integers(-3, 4)
    edges = tuple(rng.uniform(t[0] - 1e-4, t[-1] + 1e-4, 2))
    want = resid.copy()
    _refill_edges_numpy(want, t, edges)
    _refill_edges(resid, t, edges)
    assert resid.tobytes() == want.tobytes()
