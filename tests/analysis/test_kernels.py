"""Every Numba kernel equals its plain reference on seeded data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal, stats

from analysis._artifact_kernels import basis_energy, pulse_energy
from analysis._kernels import (
    _pairwise_sum,
    detect_peaks,
    displacement_means,
    line_support,
    measure_motion,
    pearson_drawn,
    resampled_ranks,
    sosfilt_inplace,
    spearman_drawn,
)
from analysis.correlation import _pearson_rows  # the plain numpy the kernel replaced
from analysis.filters import bandpass_sos, filtfilt, notch_sos
from tests.analysis._reference import (
    channel_energy_reference,
    detect_peaks_reference,
    line_support_reference,
    measure_motion_reference,
    rank_rows_reference,
    robust_fit_reference,
    sosfilt_reference,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("design", ["bandpass", "notch"])
def test_sosfilt_kernel_equals_scipy(seed, design):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5000, 3))
    sos = bandpass_sos(30_000) if design == "bandpass" else notch_sos(30_000, 50.0)
    zi = rng.standard_normal((sos.shape[0], 3, 2))
    expected, zf = sosfilt_reference(sos, x, zi)
    got, state = x.copy(), zi.copy()
    sosfilt_inplace(np.ascontiguousarray(sos), got, state)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state, zf, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fs_hz", [10_000, 30_000, 40_000])
def test_zero_phase_filter_equals_scipy_sosfiltfilt(fs_hz):
    x = np.random.default_rng(fs_hz).standard_normal((8000, 4))
    sos = bandpass_sos(fs_hz, 300, 5000)
    np.testing.assert_allclose(
        filtfilt(x, sos), signal.sosfiltfilt(sos, x, axis=0), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("sign", [-1, 0, 1])
@pytest.mark.parametrize("seed", [3, 4])
def test_peak_detector_equals_reference(sign, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((20_000, 4))
    thresholds = np.array([2.5, 3.0, 3.5, 2.0])
    start, stop, refractory = 100, 19_000, 15
    cap = 20_000
    s, c, a = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap)
    last = np.full(4, -refractory - 1, dtype=np.int64)
    n = detect_peaks(x, thresholds, sign, refractory, start, stop, last, s, c, a)
    expected = detect_peaks_reference(x, thresholds, sign, refractory, start, stop)
    assert n == len(expected) > 20
    got = sorted(zip(s[:n].tolist(), c[:n].tolist(), a[:n].tolist(), strict=True),
                 key=lambda t: (t[1], t[0]))  # fmt: skip
    assert got == sorted(expected, key=lambda t: (t[1], t[0]))


def _line_inputs(seed, quantised):
    """An epoch, its channels' scaled positions, and lines that leave it.

    Start rows run from well before the epoch to well after it (fractional, as
    ``zero_row`` is), so rows fall off either end; a quantised envelope hits
    the threshold exactly (``>=`` is tested at the boundary).
    """
    rng = np.random.default_rng(seed)
    n, n_ch = 300, 5
    if quantised:
        envelope = rng.integers(0, 12, (n, n_ch)) / 2.0
    else:
        envelope = np.abs(rng.standard_normal((n, n_ch))) * 4.0
    envelope[rng.random((n, n_ch)) < 0.2] = 0.0  # blanked
    peakedness = np.abs(rng.standard_normal((n, n_ch))) * 20.0
    positions = np.sort(rng.uniform(0.004, 0.05, n_ch)) * 20_000  # rows per s/m
    slowness = np.arange(1 / 60, 1 / 3 + 0.02, 0.02)
    t0 = rng.uniform(-0.5, 0.5) + np.arange(-250.0, n + 50.0, 1.0)
    return envelope, peakedness, positions, slowness, t0


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
@pytest.mark.parametrize("quantised", [False, True])
@pytest.mark.parametrize(
    ("threshold", "cap"), [(4.0, 30.0), (0.0, 30.0), (2.5, 5.0), (1e9, 30.0)]
)
def test_line_support_kernel_equals_reference(seed, quantised, threshold, cap):
    env, peaked, positions, slowness, t0 = _line_inputs(seed, quantised)
    support = np.full((slowness.size, t0.size), -1, dtype=np.int64)
    score = np.full((slowness.size, t0.size), np.nan)
    line_support(env, peaked, positions, slowness, t0, threshold, cap, support, score)
    want_support, want_score = line_support_reference(
        env, peaked, positions, slowness, t0, threshold, cap
    )
    np.testing.assert_array_equal(support, want_support)
    np.testing.assert_array_equal(score, want_score)  # same sum order: exact
    n_ch = env.shape[1]
    if threshold >= 1e9:
        assert support.max() == 0 and score.max() == 0.0
    else:
        assert support.max() >= 2 and score.max() <= cap * n_ch
    if threshold == 0.0:
        # Every channel whose row is in the epoch counts, so the counts show
        # the rows that fall off: some before the start, all after the end.
        assert support.max() == n_ch and support.min() == 0
        assert (support[:, 0] < n_ch).all() and (support[:, -1] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ties", [False, True])
def test_resampled_ranks_kernel_equals_reference_and_scipy(seed, ties):
    # bootstrap rows: drawn with replacement, so values repeat even untied
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, 40).astype(float) if ties else rng.normal(size=40)
    idx = rng.integers(0, 40, (300, 40))
    distinct, codes = np.unique(values, return_inverse=True)
    out = np.full(idx.shape, np.nan)
    resampled_ranks(codes.astype(np.int64), distinct.size, idx, out)
    np.testing.assert_array_equal(out, rank_rows_reference(values[idx]))
    np.testing.assert_array_equal(out, stats.rankdata(values[idx], axis=-1))
    assert (out != np.round(out)).any()  # some ties averaged to half ranks


def test_pairwise_sum_is_numpys_sum_bit_for_bit():
    rng = np.random.default_rng(9)
    for n in range(0, 600, 7):
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-4, 4, size=n)
        assert _pairwise_sum(a, 0, n) == a.sum()
        assert _pairwise_sum(a, 3, max(0, n - 5)) == a[3 : 3 + max(0, n - 5)].sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shuffled", [False, True])
def test_motion_kernel_equals_reference(seed, shuffled):
    # 60 fps frames with repeated stamps, lost frames (NaN), twitches; windows
    # with no frames before or after them (not filmed), frames out of order
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 20.0, 1200))
    t[rng.random(t.size) < 0.05] = t[0]
    t.sort()
    y = 0.01 * t + 0.02 * rng.standard_normal(t.size)
    onsets = np.concatenate([[-5.0, 25.0], np.arange(0.05, 20.0, 1.1)])
    for onset in onsets:
        y += np.where(t > onset + 0.03, 0.4 * np.exp(-(t - onset) / 0.2), 0.0)
    y[rng.random(t.size) < 0.1] = np.nan
    y[(t > 7.5) & (t < 8.7)] = np.nan  # a gap: nothing tracked around a stimulus
    if shuffled:
        order = rng.permutation(t.size)
        t, y = t[order], y[order]
    ends = onsets + rng.uniform(0.2, 0.9, onsets.size)
    k = onsets.size
    filmed = np.ones(k, dtype=bool)
    latency, peak, ttp = np.full(k, -1.0), np.full(k, -1.0), np.full(k, -1.0)
    measure_motion(y, t, onsets, ends, 0.15, 0.05, filmed, latency, peak, ttp)
    for i in range(k):
        want = measure_motion_reference(y, t, onsets[i], ends[i], 0.15, 0.05)
        assert filmed[i] == want[0]
        if want[0]:  # same frames, same order of sums: bit for bit
            np.testing.assert_array_equal([latency[i], peak[i], ttp[i]], want[1:])
    assert 3 <= (~filmed).sum() < k - 10  # both kinds of window were met
    assert np.isfinite(latency[filmed]).any()  # twitches were seen


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n", [8, 9, 37, 140])
def test_bootstrap_correlation_kernels_equal_numpy_and_scipy(seed, n):
    # resamples of a sample with ties, including rows that draw one pair only
    # (constant: NaN); Pearson on the values, Spearman on their average ranks
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 1)
    y = x + np.round(rng.normal(size=n), 1)
    idx = rng.integers(0, n, (500, n))
    idx[:3] = rng.integers(0, n)  # constant rows
    got = np.full(500, -2.0)
    pearson_drawn(x, y, idx, got)
    np.testing.assert_array_equal(got, _pearson_rows(x[idx], y[idx]))
    assert np.isnan(got[:3]).all() and np.isfinite(got[3:]).all()
    xd, xc = np.unique(x, return_inverse=True)
    yd, yc = np.unique(y, return_inverse=True)
    got = np.full(500, -2.0)
    spearman_drawn(xc.astype(np.int64), xd.size, yc.astype(np.int64), yd.size,
                   idx, got)  # fmt: skip
    want = _pearson_rows(
        stats.rankdata(x[idx], axis=-1), stats.rankdata(y[idx], axis=-1)
    )
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[:3]).all() and np.isfinite(got[3:]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("per_channel", [False, True])
def test_basis_energy_equals_numpy_least_squares(seed, per_channel):
    # Bases like the artifact's: smooth columns, columns that are zero over
    # most rows, one all zero (the ridge keeps it solvable), zero-weight rows.
    rng = np.random.default_rng(seed)
    m, n, k, n_ch = 7, 120, 9, 4
    t = np.linspace(-1, 1, n)
    basis = np.empty((m, n, k))
    for i in range(m):
        cut = rng.integers(20, 100)
        basis[i, :, 0] = 1.0
        basis[i, :, 1] = t
        basis[i, :, 2:6] = rng.standard_normal((n, 4)) * (np.arange(n) < cut)[:, None]
        basis[i, :, 6] = np.exp(-np.maximum(t - t[cut], 0) * 5) * (np.arange(n) >= cut)
        basis[i, :, 7] = np.arange(n) == cut
        basis[i, :, 8] = 0.0
    y = rng.standard_normal((n, n_ch)) * 50 + basis[0, :, :4] @ rng.normal(
        size=(4, n_ch)
    )
    w = (rng.random((n, n_ch) if per_channel else n) > 0.1).astype(np.float64)
    expected = channel_energy_reference(basis, y, w)
    got = np.empty((m, n_ch))
    basis_energy(basis, y, w.reshape(n, -1), got)
    total = (w.reshape(n, -1) * y * y).sum(axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10 * total.max())
    # what the searches use: the same candidate wins
    assert np.array_equal(got.sum(axis=1).argmin(), expected.sum(axis=1).argmin())


@pytest.mark.parametrize("per_channel", [False, True])
def test_pulse_energy_equals_energy_of_the_numpy_pulse_bases(per_channel):
    # The kernel builds each candidate's basis itself; it must be the basis
    # artifact._pulse_basis builds (pulse, tails, edge samples), so the same
    # candidate wins the search.
    from analysis.artifact import TAIL_TAUS_S, _pulse_basis

    fs = 30_000.0
    rng = np.random.default_rng(4)
    t = (np.arange(-15, 270) + 0.0) / fs
    truth = _pulse_basis(t, np.array([0.1 / fs]), np.array([5.03e-3]))[0]
    y = truth @ rng.normal(0, 200, (truth.shape[1], 4)) + rng.normal(0, 5, (t.size, 4))
    w = (rng.random((t.size, 4) if per_channel else t.size) > 0.05).astype(float)
    shifts = 0.1 / fs + np.repeat(np.arange(-2, 3), 5) * 0.25 / fs
    durations = 5e-3 + np.tile(np.arange(-2, 3), 5) * 0.03e-3
    expected = channel_energy_reference(_pulse_basis(t, shifts, durations), y, w)
    got = np.empty((shifts.size, 4))
    taus = np.array(TAIL_TAUS_S)
    pulse_energy(t, shifts, durations, taus, y, w.reshape(t.size, -1), got)
    total = (w.reshape(t.size, -1) * y * y).sum(axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10 * total.max())
    assert got.sum(axis=1).argmin() == expected.sum(axis=1).argmin()


@pytest.mark.parametrize("n", [7, 9, 10, 701, 702])
def test_median_kernels_equal_numpy_median_to_the_bit(n):
    from analysis._artifact_kernels import mad_columns, median_abs_step

    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 4)) * 30
    x[: n // 3, 1] = np.round(x[: n // 3, 1])  # ties
    skip = rng.random((n, 4)) < 0.2
    skip[:, 0] = False
    got = np.empty(4)
    mad_columns(x, skip, got)
    for c in range(4):
        v = x[~skip[:, c], c]
        want = 1.4826 * np.median(np.abs(v - np.median(v))) if v.size > 8 else np.inf
        assert got[c] == want
    median_abs_step(x, got)
    assert np.array_equal(got, np.median(np.abs(np.diff(x.T, axis=1)), axis=1))
    x[3, 2] = np.nan
    mad_columns(x, np.zeros_like(skip), got)
    assert np.isnan(got[2]) == (n > 8)


@pytest.mark.parametrize("seed", range(6))
def test_theil_sen_and_run_kernels_equal_their_references(seed):
    from analysis._artifact_kernels import run_around, theil_sen_inliers
    from tests.analysis._reference import (
        run_around_reference,
        theil_sen_inliers_reference,
    )

    rng = np.random.default_rng(seed)
    for n in (2, 3, 4, 6):
        x = np.round(rng.uniform(0.02, 0.1, n), 2 if seed % 2 else 4)  # some ties
        y = 5e-4 + x / 25 + rng.normal(0, 5e-5, n)
        y[rng.random(n) < 0.25] = np.nan
        y[rng.random(n) < 0.2] += 1e-3  # an outlier
        got = np.empty(n, dtype=bool)
        theil_sen_inliers(x, y, 1.5e-4, got)
        assert np.array_equal(got, theil_sen_inliers_reference(x, y, 1.5e-4))
    above = rng.random(40) < 0.4
    for k in range(40):
        for bridge in (1, 2, 4):
            assert run_around(above, k, bridge) == run_around_reference(
                above, k, bridge
            )


@pytest.mark.parametrize("seed", range(4))
def test_arrival_timing_kernel_equals_its_reference_to_the_bit(seed):
    from analysis.volleys import _time_arrivals
    from tests.analysis._reference import time_arrivals_reference

    rng = np.random.default_rng(seed)
    fs, n, n_ch = 30_000.0, 1200, 4
    filtered = rng.normal(0, 10, (n, n_ch))
    rows = np.array([300, 420, 540, 660]) + rng.integers(-3, 4, n_ch)
    spike = np.diff(np.exp(-0.5 * (np.arange(-20, 22) / 5.0) ** 2)) * 400
    for c in range(n_ch):
        filtered[rows[c] - 20 : rows[c] + 21, c] += spike * (1 if c % 2 else -1)
    filtered[rows[1] + 40 : rows[1] + 60, 1] += 300  # another spike nearby
    blanked = np.zeros((n, n_ch), dtype=bool)
    blanked[rows[2] + 25 : rows[2] + 30, 2] = seed % 2 == 0
    artifact = rng.normal(0, 30, (n, n_ch)) if seed < 2 else None
    support = np.array([True, True, True, seed != 3])
    noise = np.full(n_ch, 10.0)
    edges = (rows[0] + 5.5, 900.0)
    got = _time_arrivals(filtered, rows, support, noise, blanked, fs, artifact, edges)
    want = time_arrivals_reference(
        filtered, rows, support, noise, blanked, fs, artifact, edges
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_selection_equals_numpy_partition():
    from analysis._artifact_kernels import _select

    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 9, 40, 701):
        for v in (rng.standard_normal(n), np.round(rng.standard_normal(n) * 2)):
            for kth in {0, n // 4, n // 2, n - 1}:
                w = v.copy()
                assert _select(w, kth) == np.partition(v, kth)[kth]
                assert (w[:kth] <= w[kth]).all() and (w[kth:] >= w[kth]).all()
                assert np.array_equal(np.sort(w), np.sort(v))


@pytest.mark.parametrize("seed", range(4))
def test_envelope_kernel_equals_scipy_filters_to_the_bit(seed):
    from analysis._artifact_kernels import envelope_into
    from analysis.volleys import ENVELOPE_HALF_WIDTH_S, spike_envelope

    rng = np.random.default_rng(seed)
    fs, n = 30_000.0, int(rng.integers(5, 900))
    f = rng.normal(0, 10, (n + 10, 4)) * rng.uniform(0.1, 50)
    noise = rng.uniform(1, 20, 4)
    blanked = rng.random((n + 10, 4)) < 0.05
    widened, smooth = spike_envelope(f[5 : 5 + n], noise, blanked[5 : 5 + n], fs)
    env, peaked = np.zeros((n + 10, 4)), np.zeros((n + 10, 4))
    half = max(1, round(ENVELOPE_HALF_WIDTH_S * fs))
    envelope_into(f, noise, blanked, 5, 5 + n, half, env, peaked)
    assert np.array_equal(env[5 : 5 + n], widened)
    assert np.array_equal(peaked[5 : 5 + n], smooth)
    assert not env[:5].any() and not peaked[5 + n :].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_displacement_means_equal_the_numpy_running_mean(seed):
    # bands lost (NaN, inf) anywhere, including the first column and whole
    # rows, signed zeros, a column subset in any order: the same bits as the
    # numpy running-sum mean the online displacement also uses
    from analysis.displacement import _finite_mean

    rng = np.random.default_rng(seed)
    pos = rng.normal(50.0, 20.0, (300, 40))
    pos[rng.random(pos.shape) < 0.2] = np.nan
    pos[rng.random(pos.shape) < 0.01] = np.inf
    pos[7] = np.nan
    rest = pos[10].copy()
    rest[~np.isfinite(rest)] = 3.0
    pos[11, :5] = rest[:5]  # zero displacements
    pos[12, 0], rest[0] = -0.0, 0.0
    pos = pos[:, :35]  # a view, as the displacement rule passes it
    for columns in (
        np.arange(35),
        rng.permutation(35)[:9],
        np.array([0]),
        np.array([], int),
    ):
        out = np.empty(pos.shape[0])
        displacement_means(pos, rest, columns, out)
        want = _finite_mean(pos[:, columns] - rest[columns], axis=1)
        np.testing.assert_array_equal(out, want)
        assert np.array_equal(np.signbit(out), np.signbit(want))


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 700),
    k=st.integers(3, 16),
    n_ch=st.integers(1, 5),
    unused=st.sampled_from([0.0, 0.05, 0.5]),
    oddity=st.sampled_from(["none", "ties", "one_channel_unused", "uneven", "nan"]),
)
def test_robust_fit_equals_the_numpy_original_to_the_bit(
    seed, n, k, n_ch, unused, oddity
):
    # Its coefficients go into every result, so not "close": equal. Bases
    # like the artifact's (smooth columns, columns zero over most rows),
    # outliers (spikes) for the bisquare to weigh down, rows with no weight.
    from analysis.artifact import _robust_fit

    rng = np.random.default_rng(seed)
    t = np.linspace(-1, 1, n)
    basis = np.empty((n, k))
    for a in range(k):
        cut = rng.integers(0, n)
        basis[:, a] = np.where(
            (t >= t[cut]) if a % 2 else (t < t[cut]), np.cos(a * t + rng.random()), 0
        )
    basis[:, 0] = 1.0
    y = basis @ rng.normal(0, 100, (k, n_ch)) + rng.normal(0, 3, (n, n_ch))
    y[rng.random((n, n_ch)) < 0.05] += 500.0  # spikes
    w0 = (rng.random((n, n_ch)) >= unused).astype(np.float64)
    if oddity == "ties":
        y = np.round(y)
        basis = np.round(basis * 4) / 4
    elif oddity == "one_channel_unused":
        w0[:, 0] = 0.0
    elif oddity == "uneven":
        w0[: n // 3, -1] = 0.0
    elif oddity == "nan":
        y[rng.integers(0, n), rng.integers(0, n_ch)] = np.nan
    got = _robust_fit(basis, y, w0)
    want = robust_fit_reference(basis, y, w0)
    assert got.tobytes() == want.tobytes() or np.array_equal(got, want, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 40))
def test_ridge_kernel_adds_the_trace_as_numpy_does(seed, k):
    # The fit's ridge (1e-9 of the trace) rarely moves a coefficient, so the
    # order of the trace's sum is checked here, on diagonals whose entries
    # span many magnitudes (where that order shows).
    from analysis._artifact_kernels import add_ridge

    rng = np.random.default_rng(seed)
    gram = rng.normal(size=(3, k, k)) * 10.0 ** rng.integers(-12, 12, (3, k, k))
    want = gram + 1e-9 * np.eye(k)[None] * (
        np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-3
    )
    add_ridge(gram)
    assert gram.tobytes() == want.tobytes()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    per_channel=st.booleans(),
    unused=st.sampled_from([0.0, 0.05, 0.3]),
)
def test_pulse_energy_sums_as_the_row_by_row_kernel_to_the_bit(
    seed, per_channel, unused
):
    # pulse_energy adds the pulse's and the tail's rows in running sums and
    # the baseline's once; basis_energy adds every row's terms in turn. The
    # same sums in the same order: the same energies, not just close ones
    # (the search's argmin and the length test compare them).
    from tests.analysis._reference import pulse_basis_as_built

    fs = 30_000.0
    rng = np.random.default_rng(seed)
    t = np.arange(-15, int(rng.integers(100, 300))) / fs
    n = t.size
    taus = np.array([0.5e-3, 1.5e-3, 4e-3, 12e-3])
    shifts = rng.uniform(-2, 2, 6) / fs
    durations = rng.uniform(1.5e-3, 4e-3, 6)
    y = rng.normal(0, 200, (n, 4)).cumsum(axis=0) / 10
    w = (rng.random((n, 4) if per_channel else (n, 1)) >= unused).astype(float)
    got = np.empty((shifts.size, 4))
    pulse_energy(t, shifts, durations, taus, y, w, got)
    for i in range(shifts.size):
        basis = pulse_basis_as_built(t, shifts[i], durations[i], taus)
        want = np.empty((1, 4))
        basis_energy(basis[None], y, w, want)
        assert got[i].tobytes() == want[0].tobytes()
