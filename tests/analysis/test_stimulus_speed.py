"""The per-stimulus analysis's faster paths give the slower paths' values to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._kernels import _sosfilt_direction
from analysis._volley_kernels import _first_at_least, _two_sections, candidate_lines
from tests.analysis._reference import candidate_lines_reference


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("n_ch", [4, 8])
def test_two_sections_in_one_sweep_equal_section_by_section(n_ch, backward):
    from analysis.filters import bandpass_sos

    rng = np.random.default_rng(n_ch)
    sos = bandpass_sos(30_000.0)
    assert sos.shape[0] == 2
    x = rng.normal(0, 50, (900, n_ch))
    zi = rng.normal(0, 5, (2, n_ch, 2))
    want, want_zi = x.copy(), zi.copy()
    _sosfilt_direction(sos, want, want_zi, backward)
    got, got_zi = x.copy(), zi.copy()
    _two_sections(sos, got, got_zi, backward)
    assert np.array_equal(got, want) and np.array_equal(got_zi, want_zi)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(-3, 12), max_size=20),
    bound=st.integers(-5, 15),
)
def test_first_at_least_is_searchsorted(values, bound):
    v = np.sort(np.array(values, dtype=np.int64))
    assert _first_at_least(v, bound) == np.searchsorted(v, bound)


@pytest.mark.parametrize("order", ["rising", "shuffled", "falling"])
def test_candidate_search_with_any_start_grid_equals_the_numpy_code(order):
    # The kernel bisects the lines through a cleared spike when the start
    # grid rises (as find_volleys makes it); any other grid is scanned.
    rng = np.random.default_rng(3)
    n, n_ch = 300, 4
    env = np.abs(rng.standard_normal((n, n_ch))) * 2.0
    for v_rows, start in ((3.0, 50), (6.0, 80)):
        for c in range(n_ch):
            r = int(start + v_rows * 8 * c)
            env[r - 5 : r + 6, c] += 12.0
    peaked = env * rng.uniform(0.5, 1.5, env.shape)
    scaled = np.arange(1, n_ch + 1) * 8.0 * 30.0
    slowness = np.arange(0.005, 0.03, 0.0013)
    t0 = rng.uniform(-0.5, 0.5) + np.arange(-30.0, 320.0, 2.0)
    if order == "shuffled":
        t0 = rng.permutation(t0)
    elif order == "falling":
        t0 = t0[::-1].copy()
    need, clear, tries = 3, 10, 4
    want = candidate_lines_reference(
        env, peaked, scaled, slowness, t0, 4.0, 30.0, need, clear, 1.3, tries
    )
    rows = np.empty((tries, n_ch), dtype=np.int64)
    on = np.empty((tries, n_ch), dtype=bool)
    velocity = np.empty(tries)
    kept = candidate_lines(
        env.copy(), peaked.copy(), scaled, slowness, t0, 4.0, 30.0, need, clear,
        1.3, tries, rows, on, velocity,
    )  # fmt: skip
    assert kept == len(want) >= 1
    for k, (v, r, o) in enumerate(want):
        assert velocity[k] == v
        assert np.array_equal(rows[k], r) and np.array_equal(on[k], o)


def _mad_reference(x: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """1.4826 × MAD per column over the rows not skipped (inf: 8 or fewer)."""
    out = np.empty(x.shape[1])
    for c in range(x.shape[1]):
        v = x[~skip[:, c], c]
        out[c] = np.inf if v.size <= 8 else 1.4826 * np.median(np.abs(v - np.median(v)))
    return out


@settings(max_examples=400, deadline=None)
@given(
    n=st.integers(0, 400),
    n_ch=st.integers(1, 5),
    levels=st.sampled_from([0, 3, 40]),  # 0: continuous values; else ties
    skip_p=st.sampled_from([0.0, 0.1, 0.9]),
    special=st.sampled_from(["none", "nan", "inf", "zeros"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_mad_columns_is_numpys_median_of_deviations(
    n, n_ch, levels, skip_p, special, seed
):
    from analysis._artifact_kernels import mad_columns

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10, (n, n_ch))
    if levels:
        x = np.round(x * levels / 30) * 30 / levels
    if n and special == "nan":
        x[rng.integers(n), 0] = np.nan
    elif n and special == "inf":
        x[rng.integers(n), 0] = np.inf
    elif special == "zeros":
        x[rng.random(x.shape) < 0.6] = 0.0
        x[rng.random(x.shape) < 0.2] = -0.0
    x = x[::2] if n % 3 == 0 else x  # strided rows, as _mad passes them
    skip = rng.random(x.shape) < skip_p
    got = np.empty(x.shape[1])
    mad_columns(x, skip, got)
    with np.errstate(invalid="ignore"):
        want = _mad_reference(x, skip)
    assert np.array_equal(got, want, equal_nan=True)
