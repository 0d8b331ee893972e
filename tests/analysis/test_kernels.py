"""Every Numba kernel equals its plain reference on seeded data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analysis._kernels import detect_peaks, sosfilt_inplace
from analysis.filters import bandpass_sos, filtfilt, notch_sos
from tests.analysis._reference import detect_peaks_reference, sosfilt_reference


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
