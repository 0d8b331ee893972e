"""The worm model's outputs match its parameters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.special import erf

from firmware_bridge.sim import (
    RacewayGeometry,
    WormModel,
    WormParams,
    response_probability,
    threshold_vpp,
    to_adc_counts,
)

FS = 30_000.0
RESTED = WormParams(habituation_per_stimulus=0.0)


def test_render_is_deterministic_and_independent_of_chunking():
    def run(chunks):
        model = WormModel(seed=9, fs_hz=FS)
        model.stimulate(2000, 5.0, 3e-3)
        parts, pos = [], 0
        for n in chunks:
            parts.append(model.render(pos, n))
            pos += n
        return np.concatenate(parts)

    whole = run([20_000])
    np.testing.assert_array_equal(whole, run([300] * 66 + [200]))
    np.testing.assert_array_equal(whole, run([4095, 1, 7000, 8904]))


def test_spike_arrival_follows_distance_over_velocity_for_both_fibres():
    model = WormModel(RESTED, seed=1, fs_hz=FS)
    outcome = model.stimulate(1000, 5.9, 5e-3)
    assert outcome.mgf_fired and outcome.lgf_fired
    centres = model.geometry.pair_centres_m()
    for fibre, velocity in (("mgf", 30.0), ("lgf", 15.0)):
        peaks = np.array(getattr(outcome, f"{fibre}_spike_samples"))
        slope_s_per_m = np.polyfit(centres, peaks / FS, 1)[0]
        assert 1 / slope_s_per_m == pytest.approx(velocity, rel=1e-9)


def test_fifty_percent_threshold_matches_strength_duration_prediction():
    rng = np.random.default_rng(0)
    model = WormModel(RESTED, seed=2, fs_hz=FS)
    duration = 2e-3
    amplitudes = rng.uniform(2.0, 4.0, 1500)
    fired = []
    for k, a in enumerate(amplitudes):  # 1 s apart: rested, no refractoriness
        fired.append(model.stimulate(int(k * FS), a, duration).mgf_fired)

    def cdf(x, mu, sd):
        return 0.5 * (1 + erf((x - mu) / (sd * np.sqrt(2))))

    (mu, _sd), _ = curve_fit(cdf, amplitudes, np.array(fired, float), p0=(3.0, 0.2))
    assert mu == pytest.approx(threshold_vpp(RESTED, duration), rel=0.02)
    assert response_probability(RESTED, mu, duration) == pytest.approx(0.5, abs=0.03)


def test_second_stimulus_inside_refractory_period_evokes_nothing():
    model = WormModel(RESTED, seed=3, fs_hz=FS)
    assert model.stimulate(1000, 5.5, 2e-3).mgf_fired
    assert not model.stimulate(1000 + 60, 5.5, 2e-3).mgf_fired  # 2 ms later
    assert model.stimulate(1000 + 3000, 5.5, 2e-3).mgf_fired  # 100 ms later


def test_twitch_peaks_after_the_electromechanical_delay_and_sums_at_1_hz():
    p = RESTED
    model = WormModel(p, seed=4, fs_hz=FS)
    model.stimulate(0, 4.0, 3e-3)
    t = np.arange(0, int(0.9 * FS), 30)
    strain = model.segment_strain(t)[:, 0]
    peak_s = t[np.argmin(strain)] / FS
    expected = p.utilisation_s + p.electromechanical_delay_s + p.twitch_peak_s
    assert peak_s == pytest.approx(expected, abs=0.002)
    before = model.segment_strain(int(FS) - 30)[0, 0]
    model.stimulate(int(FS), 4.0, 3e-3)
    second_peak = model.segment_strain(int(FS + expected * FS))[0, 0]
    first_peak = strain.min()
    assert before < 0  # the first twitch has not relaxed after 1 s
    assert second_peak < first_peak  # the second adds to what remains


def test_contraction_moves_posterior_boundaries_toward_the_head():
    model = WormModel(RESTED, seed=5, fs_hz=FS)
    rest = model.segment_boundaries_m(0)
    model.stimulate(0, 4.0, 3e-3)
    contracted = model.segment_boundaries_m(int(0.3 * FS))
    assert contracted[0] == rest[0]  # the head is anchored
    assert np.all(np.diff(contracted - rest) <= 0)
    assert 0.5e-3 < rest[-1] - contracted[-1] < 5e-3


def test_adc_quantises_with_gain_and_clips_like_hardware():
    lsb_v = 5.0 / 65536 / 1000
    counts = to_adc_counts(np.array([0.0, 100 * lsb_v, -1.0]), gain=1000)
    np.testing.assert_array_equal(counts, [0, 100, -32768])


def test_geometry_errors_name_the_field_and_the_range():
    with pytest.raises(ValueError, match=r"recording_pairs_m\[1\].*0–150 mm"):
        RacewayGeometry(recording_pairs_m=((0.03, 0.035), (0.2, 0.21)))
    with pytest.raises(ValueError, match="allowed 1–32"):
        RacewayGeometry.evenly_spaced(33)
    assert RacewayGeometry.evenly_spaced(32).n_channels == 32
