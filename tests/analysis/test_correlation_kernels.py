"""The bootstrap's correlation kernels equal the plain numpy and scipy they
replaced, bit for bit, at every size: below 8 pairs (numpy sums them one by
one), 8–128 (one block of numpy's eight running sums: the kernels' own
path), above 128 (numpy's pairwise halves), and Spearman's exact integer
sums against its float ranks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis._kernels import (
    _spearman_drawn_rounded,
    pearson_drawn,
    spearman_drawn,
)
from analysis.correlation import BOOT_SEED, N_BOOT, _codes, _draws, _pearson_rows


def _sample(seed: int, n: int, decimals: int, m: int):
    # values rounded to ``decimals``: few decimals, many ties; rows drawn with
    # replacement, a few constant (one pair drawn n times: NaN)
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3), decimals)
    y = np.round(x + rng.normal(size=n), decimals)
    idx = rng.integers(0, n, (m, n))
    idx[: min(2, m)] = rng.integers(0, n)
    return x, y, idx


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 2, 5, 7, 8, 9, 15, 16, 17, 60, 127, 128, 129, 200, 300]),
    decimals=st.sampled_from([0, 1, 6]),
)
def test_pearson_and_spearman_kernels_equal_numpy_and_scipy(seed, n, decimals):
    x, y, idx = _sample(seed, n, decimals, 40)
    got = np.full(idx.shape[0], -2.0)
    pearson_drawn(x, y, idx, got)
    np.testing.assert_array_equal(got, _pearson_rows(x[idx], y[idx]))
    want = _pearson_rows(
        stats.rankdata(x[idx], axis=-1), stats.rankdata(y[idx], axis=-1)
    )
    (xc, xd), (yc, yd) = _codes(x), _codes(y)
    got = np.full(idx.shape[0], -2.0)
    spearman_drawn(xc, xd, yc, yd, idx, got)
    np.testing.assert_array_equal(got, want)
    # the float ranks' path (beyond the exact sums' size) agrees as well
    rounded = np.full(idx.shape[0], -2.0)
    _spearman_drawn_rounded(xc, xd, yc, yd, idx, rounded)
    np.testing.assert_array_equal(rounded, want)


def test_spearman_kernel_on_the_bootstraps_own_draws():
    # the draws correlate makes (N_BOOT rows), with heavy ties in x
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=43), 1)
    y = x + rng.normal(size=43)
    idx = _draws(43)[1]
    (xc, xd), (yc, yd) = _codes(x), _codes(y)
    got = np.empty(idx.shape[0])
    spearman_drawn(xc, xd, yc, yd, idx, got)
    np.testing.assert_array_equal(
        got,
        _pearson_rows(stats.rankdata(x[idx], axis=-1), stats.rankdata(y[idx], axis=-1)),
    )
    assert xd < 30 and np.isfinite(got).all()


def test_draws_are_the_seeded_generators_first_two():
    rng = np.random.default_rng(BOOT_SEED)
    first, second = _draws(37)
    np.testing.assert_array_equal(first, rng.integers(0, 37, size=(N_BOOT, 37)))
    np.testing.assert_array_equal(second, rng.integers(0, 37, size=(N_BOOT, 37)))
    assert not first.flags.writeable and not second.flags.writeable
    # beyond the kept sizes, drawn afresh: the same draws
    big = _draws(300)
    rng = np.random.default_rng(BOOT_SEED)
    for drawn in big:
        np.testing.assert_array_equal(drawn, rng.integers(0, 300, size=(N_BOOT, 300)))
