"""The volley search's Numba kernels equal the numpy code they replaced, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import volleys
from analysis._volley_kernels import (
    ARTIFACT_RATIO,
    LOCAL_SNR_MIN,
    _correlate_valid,
    candidate_lines,
    count_columns,
    widen_rows,
)
from tests.analysis._reference import (
    candidate_lines_reference,
    fit_line_reference,
    time_arrivals_reference,
)


def test_kernel_constants_are_the_modules():
    assert (LOCAL_SNR_MIN, ARTIFACT_RATIO) == (
        volleys.LOCAL_SNR_MIN,
        volleys.ARTIFACT_RATIO,
    )


@settings(max_examples=300, deadline=None)
@given(
    m=st.integers(1, 40),
    extra=st.integers(0, 9),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e4),
)
def test_correlation_is_numpys_for_short_and_long_kernels(m, extra, seed, scale):
    # numpy sums a kernel of up to 11 samples itself, a longer one in BLAS:
    # both orders are kept (a column of a 2-D array, as the alignment has)
    rng = np.random.default_rng(seed)
    data = rng.normal(0, scale, (m + extra, 3))
    template = rng.normal(0, scale, m)
    out = np.empty(extra + 1)
    _correlate_valid(np.ascontiguousarray(data[:, 1]), template, out)
    assert np.array_equal(out, np.correlate(data[:, 1], template, mode="valid"))


def _epoch(seed, fs):
    """Four channels of noise with a biphasic spike on a line, one spike
    nearby, a blanked stretch and (some seeds) a subtracted artifact."""
    rng = np.random.default_rng(seed)
    n, n_ch = round(0.04 * fs), 4
    filtered = rng.normal(0, 10, (n, n_ch))
    step = round(0.004 * fs) + int(rng.integers(-2, 3))
    rows = round(0.01 * fs) + step * np.arange(n_ch) + rng.integers(-2, 3, n_ch)
    width = max(3, round(0.15e-3 * fs))
    t = np.arange(-4 * width, 4 * width + 1)
    spike = np.diff(np.exp(-0.5 * (t / width) ** 2), append=0.0) * 400 * width / 5
    for c in range(n_ch):
        sign = 1 if c % 2 else -1
        filtered[rows[c] - 4 * width : rows[c] + 4 * width + 1, c] += sign * spike
    filtered[rows[1] + 6 * width : rows[1] + 9 * width, 1] += 300  # another spike
    blanked = np.zeros((n, n_ch), dtype=bool)
    blanked[rows[2] + 5 * width : rows[2] + 6 * width, 2] = seed % 2 == 0
    artifact = rng.normal(0, 30, (n, n_ch)) if seed % 3 else None
    noise = np.full(n_ch, 10.0) * rng.uniform(0.8, 1.2, n_ch)
    return filtered, rows, noise, blanked, artifact


@pytest.mark.parametrize("fs", [8_000.0, 10_000.0, 20_000.0, 30_000.0])
@pytest.mark.parametrize("seed", range(6))
def test_arrival_timing_and_fit_equal_the_numpy_code(seed, fs):
    filtered, rows, noise, blanked, artifact = _epoch(seed, fs)
    support = np.array([True, True, True, seed != 3])
    edges = (rows[0] + 5.5, rows[2] - 0.5)
    got = volleys._time_arrivals(
        filtered, rows, support, noise, blanked, fs, artifact, edges
    )
    want = time_arrivals_reference(
        filtered, rows, support, noise, blanked, fs, artifact, edges
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    x = np.array([37.5, 57.5, 77.5, 97.5]) * 1e-3
    zero_row = round(0.005 * fs) + 0.25
    if seed == 5:  # a line that leaves the epoch: its rows are clipped
        rows = rows.copy()
        rows[3] = filtered.shape[0] + 7
        filtered = filtered.copy()
        filtered[-4:, 3] += 200.0 * np.array([1, -1, 1, -1])
    args = (filtered, rows, support, noise, blanked, fs, zero_row, x, 3,
            0.15e-3 + 1 / fs, (3.0, 60.0), artifact, edges)  # fmt: skip
    line, ref = volleys._fit_line(*args), fit_line_reference(*args)
    assert (line is None) == (ref is None)
    if ref is not None:
        for name in volleys.Line.__slots__:
            g, w = getattr(line, name), getattr(ref, name)
            if isinstance(w, np.ndarray):
                assert np.array_equal(g, w, equal_nan=True), name
                assert g.dtype == w.dtype, name
            else:
                assert g == w or (g != g and w != w), name


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [4.0, 2.0, 1e9])
def test_candidate_search_equals_the_numpy_code(seed, threshold):
    rng = np.random.default_rng(seed)
    n, n_ch = 400, 4
    env = np.abs(rng.standard_normal((n, n_ch))) * 2.0
    if seed % 2:
        env = np.round(env * 2) / 2  # exactly on the threshold, ties of score
    for v_rows, start in ((3.0, 60), (6.0, 100)):  # two volleys on lines
        for c in range(n_ch):
            r = int(start + v_rows * 10 * c)
            env[r - 6 : r + 7, c] += 10.0 * rng.uniform(0.5, 2)
    peaked = env * rng.uniform(0.5, 1.5, env.shape)
    peaked[rng.random(env.shape) < 0.02] = 40.0  # beyond the cap
    scaled = np.arange(1, n_ch + 1) * 10.0 * 30.0  # rows per (s/m)
    slowness = np.arange(0.005, 0.03, 0.0011)
    t0 = rng.uniform(-0.5, 0.5) + np.arange(-40.0, 420.0, 2.0)  # off both ends
    need, clear, tries = 3, 12, 4
    want = candidate_lines_reference(
        env, peaked, scaled, slowness, t0, threshold, 30.0, need, clear, 1.3, tries
    )
    rows = np.empty((tries, n_ch), dtype=np.int64)
    on = np.empty((tries, n_ch), dtype=bool)
    velocity = np.empty(tries)
    e, p = env.copy(), peaked.copy()
    kept = candidate_lines(
        e, p, scaled, slowness, t0, threshold, 30.0, need, clear, 1.3, tries,
        rows, on, velocity,
    )  # fmt: skip
    assert kept == len(want)
    for k, (v, r, o) in enumerate(want):
        assert velocity[k] == v
        assert np.array_equal(rows[k], r) and np.array_equal(on[k], o)
    if threshold < 1e9:
        assert kept >= 1


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    spread=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_widened_mask_equals_shifted_ors(n, spread, seed):
    mask = np.random.default_rng(seed).random((n, 3)) < 0.1
    want = mask.copy()
    for k in range(1, spread + 1):
        want[k:] |= mask[:-k]
        want[:-k] |= mask[k:]
    out = np.empty_like(mask)
    widen_rows(mask, spread, out)
    assert np.array_equal(out, want)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), seed=st.integers(0, 2**32 - 1))
def test_column_counts_equal_numpys_sum(n, seed):
    mask = np.random.default_rng(seed).random((n, 3)) < 0.3
    out = np.empty(3, dtype=np.int64)
    count_columns(mask, out)
    assert np.array_equal(out, mask.sum(axis=0))
    assert np.array_equal(out / 30_000.0, mask.sum(axis=0) / 30_000.0)


def _biquads_reference(sos, x, zi, backward):
    """Direct form II transposed in plain Python, channel by channel."""
    x, zi = x.copy(), zi.copy()
    order = range(x.shape[0] - 1, -1, -1) if backward else range(x.shape[0])
    for s, (b0, b1, b2, _, a1, a2) in enumerate(sos.tolist()):
        for c in range(x.shape[1]):
            z0, z1 = float(zi[s, c, 0]), float(zi[s, c, 1])
            for i in order:
                xi = float(x[i, c])
                yi = b0 * xi + z0
                z0 = b1 * xi - a1 * yi + z1
                z1 = b2 * xi - a2 * yi
                x[i, c] = yi
            zi[s, c] = z0, z1
    return x, zi


@pytest.mark.parametrize("n_ch", [1, 3, 4, 5, 8, 9])
@pytest.mark.parametrize("backward", [False, True])
def test_biquad_kernel_is_the_plain_recurrence_to_the_bit(n_ch, backward):
    # four channels at a time in registers, the rest through the state
    # arrays: both give the recurrence's own values
    from analysis._kernels import _sosfilt_direction
    from analysis.filters import bandpass_sos, hum_notch_sos

    rng = np.random.default_rng(n_ch)
    sos = np.vstack([bandpass_sos(20_000.0), hum_notch_sos(20_000.0, 50.0)])
    x = rng.normal(0, 50, (700, n_ch))
    zi = rng.normal(0, 5, (sos.shape[0], n_ch, 2))
    want, want_zi = _biquads_reference(sos, x, zi, backward)
    got, got_zi = x.copy(), zi.copy()
    _sosfilt_direction(sos, got, got_zi, backward)
    assert np.array_equal(got, want) and np.array_equal(got_zi, want_zi)


@pytest.mark.parametrize("n_ch", [1, 4, 6])
def test_filtfilt_is_the_odd_extension_and_both_passes_to_the_bit(n_ch):
    from scipy import signal

    from analysis.filters import bandpass_sos, filtfilt

    rng = np.random.default_rng(n_ch)
    x = rng.normal(0, 50, (500, n_ch)) + 300.0
    sos = bandpass_sos(30_000.0)
    pad = 3 * (2 * sos.shape[0] + 1)
    ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2 : -pad - 2 : -1]])
    step = signal.sosfilt_zi(sos)
    ext, _ = _biquads_reference(
        sos, ext, step[:, None, :] * ext[0][None, :, None], False
    )
    ext, _ = _biquads_reference(
        sos, ext, step[:, None, :] * ext[-1][None, :, None], True
    )
    assert np.array_equal(filtfilt(x, sos), ext[pad:-pad])
    assert np.array_equal(filtfilt(x[:, 0], sos)[:, 0], ext[pad:-pad, 0])


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 120),
    half=st.integers(1, 9),
    bounds=st.lists(st.integers(-10, 130), min_size=4, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    nan=st.booleans(),
)
def test_search_envelope_equals_envelope_into_then_cut(n, half, bounds, seed, nan):
    from analysis._artifact_kernels import envelope_into
    from analysis._volley_kernels import search_envelope

    rng = np.random.default_rng(seed)
    filtered = rng.normal(0, 10, (n, 3)) * rng.uniform(0.1, 50)
    filtered[rng.random((n, 3)) < 0.1] = 0.0  # ties at the floor
    if nan:
        filtered[rng.random((n, 3)) < 0.05] = np.nan
    noise = rng.uniform(1, 20, 3)
    blanked = rng.random((n, 3)) < 0.05
    a, b = max(0, bounds[0]), min(n, max(0, bounds[1]))
    lo, hi = max(0, bounds[2]), max(0, bounds[3])
    want_env, want_peaked = np.zeros((n, 3)), np.zeros((n, 3))
    if b > a:
        envelope_into(filtered, noise, blanked, a, b, half, want_env, want_peaked)
    for e in (want_env, want_peaked):
        e[:lo] = 0.0
        e[hi:] = 0.0
    env, peaked = np.full((n, 3), 7.0), np.full((n, 3), 7.0)
    search_envelope(filtered, noise, blanked, a, b, lo, hi, half, env, peaked)
    assert np.array_equal(env, want_env, equal_nan=True)
    assert np.array_equal(peaked, want_peaked, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 3000),
    n_ch=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_residual_energy_is_numpys_sum(n, n_ch, seed):
    from analysis._volley_kernels import residual_energy

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, n_ch)) * 10.0 ** rng.uniform(-3, 3)
    fitted = x + rng.normal(0, 1, (n, n_ch))
    resid = x - fitted
    assert residual_energy(x, fitted) == float(np.sum(resid * resid))
