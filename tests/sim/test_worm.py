"""The worm model's outputs match its parameters."""

from __future__ import annotations

import json
from dataclasses import replace

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
from firmware_bridge.sim.worm import spike_waveform

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


# ------------------------------------------------- waveform, artifact, hum, wiring

QUIET = WormParams(
    habituation_per_stimulus=0.0, noise_uv_rms=0.0, hum_uv=0.0,
    hum_harmonics_uv=(), drift_uv=0.0, artifact_coupling=0.0,
    lgf_threshold_ratio=10.0,  # MGF only
)  # fmt: skip
ALL_ON = WormParams(
    spike_shape="triphasic", spike_dispersion_per_m=4.0, artifact_coupling=2e-2,
    artifact_ringing_hz=2500.0, artifact_ringing_fraction=0.1,
    hum_harmonics_uv=(4.0, 2.0, 1.0, 0.5), channel_polarity=(1, -1, 1, -1),
    channel_gain_error=(0.02, -0.03, 0.0, 0.1),
)  # fmt: skip


def phases(w: np.ndarray, floor: float = 0.05) -> list[float]:
    """Signed peaks of the waveform's phases larger than ``floor`` of the largest."""
    big = np.where(np.abs(w) > floor * np.abs(w).max(), np.sign(w), 0.0)
    out, current = [], 0.0
    for i, s in enumerate(big):
        if s == 0:
            continue
        if s != np.sign(current):
            out.append(0.0)
        if abs(w[i]) > abs(out[-1]):
            out[-1] = float(w[i])
        current = s
    return out


def test_biphasic_and_triphasic_shapes_have_their_phases_and_no_net_area():
    t = np.linspace(-3e-3, 3e-3, 60_001)
    bi = spike_waveform(t, 0.2e-3, "biphasic")
    tri = spike_waveform(t, 0.2e-3, "triphasic")
    assert phases(bi) == pytest.approx([1.0, -1.0], abs=1e-6)
    lead, main, trail = phases(tri)
    assert main == pytest.approx(-1.0, abs=1e-6)
    assert 0.2 < lead < trail < 0.7  # small leading positive phase
    assert t[np.argmin(tri)] == pytest.approx(0.0, abs=1e-7)  # main peak at arrival
    for w in (bi, tri):
        assert abs(w.sum()) * (t[1] - t[0]) < 1e-9
    with pytest.raises(ValueError, match="spike_shape 'square' is not one of"):
        WormParams(spike_shape="square")


@pytest.mark.parametrize("dispersion", [0.0, 2.0, 5.0])
def test_spike_broadens_with_distance_travelled_on_rendered_data(dispersion):
    # Electrodes 110 mm apart: the channel shows a's spike, then b's (negated),
    # well separated; each biphasic spike's two peaks are 2σ apart.
    fs = 1_000_000.0
    geometry = RacewayGeometry(recording_pairs_m=((0.020, 0.130),))
    params = replace(QUIET, spike_dispersion_per_m=dispersion)
    model = WormModel(params, geometry, fs_hz=fs, seed=1)
    assert model.stimulate(1000, 4.0, 3e-3).mgf_fired
    x = model.render(0, 8000)[:, 0]
    stim = geometry.site_m(0)  # spikes start under the cathode, electrode 0
    measured = []
    for electrode, sign in ((0.020, 1), (0.130, -1)):
        arrival = 1000 + (params.utilisation_s + (electrode - stim) / 30.0) * fs
        seg = sign * x[int(arrival) - 1500 : int(arrival) + 1500]
        measured.append((np.argmin(seg) - np.argmax(seg)) / fs / 2)
        expected = params.spike_width_s * (1 + dispersion * (electrode - stim))
        assert measured[-1] == pytest.approx(expected, rel=0.01)
    assert model.ground_truth()["spike_width_s_at_pairs"][0] == pytest.approx(
        [params.spike_width_s * (1 + dispersion * (e - stim)) for e in (0.02, 0.13)]
    )
    if dispersion:
        assert measured[1] > 1.1 * measured[0]


def test_default_spike_stays_visible_and_broadens_from_pair_to_pair():
    params = replace(QUIET, spike_dispersion_per_m=2.0)  # the default
    fs = 300_000.0
    model = WormModel(params, seed=2, fs_hz=fs)
    assert model.stimulate(10_000, 4.0, 3e-3).mgf_fired
    x = model.render(0, 20_000) * 1e6
    assert np.all(np.ptp(x, axis=0) > 60)  # µV peak-to-peak, every pair
    # The recorded main phase's width at half height, ~0.2 ms, grows pair by pair.
    widths = np.sum(np.abs(x) > 0.5 * np.abs(x).max(axis=0), axis=0) / fs
    assert 0.18e-3 < widths[0] < 0.22e-3
    assert np.all(np.diff(widths) > 0) and widths[-1] > 1.08 * widths[0]


def artifact_only(**kw) -> np.ndarray:
    params = replace(QUIET, artifact_coupling=2e-3, mgf_rheobase_vpp=100.0, **kw)
    model = WormModel(params, seed=3, fs_hz=FS)
    model.stimulate(300, 5.0, 3e-3)
    return model.render(0, 3000)


def test_artifact_rings_after_the_pulse_as_a_damped_sinusoid():
    p = WormParams()
    ring = artifact_only(artifact_ringing_fraction=0.1) - artifact_only(
        artifact_ringing_hz=0.0
    )
    end = 300 + round(3e-3 * FS)
    np.testing.assert_array_equal(ring[:end], 0.0)  # nothing before the pulse ends
    r = ring[end:, 0]
    after = np.arange(r.size) / FS
    gain = 2e-3 * np.exp(-abs(0.0375 - 0.008) / 0.015)  # nearest pair
    expected = (
        0.1 * 2.5 * gain * np.exp(-after / p.artifact_ringing_tau_s)
        * np.sin(2 * np.pi * p.artifact_ringing_hz * after)
    )  # fmt: skip
    np.testing.assert_allclose(r, expected, atol=1e-12)
    assert np.abs(r).max() > 10e-6  # clearly there at the nearest pair
    crossings = np.flatnonzero(np.diff(np.sign(r[1:40])) != 0)
    assert len(crossings) >= 4  # it oscillates, not a single tail


def test_artifact_tail_is_two_exponentials_with_an_undershoot():
    x = artifact_only(artifact_ringing_hz=0.0)[:, 0]
    end = 300 + round(3e-3 * FS)
    tail = x[end:]
    assert tail[0] > 0 and tail.min() < 0  # fast positive tail, slow undershoot
    crossing_s = np.argmax(tail < 0) / FS  # 0.2·e^(−t/1 ms) = 0.05·e^(−t/4 ms)
    assert crossing_s == pytest.approx(4 / 3 * np.log(4) * 1e-3, abs=1 / FS)


def test_large_artifact_coupling_rails_the_nearest_channel_only():
    for coupling, railed in ((2e-3, False), (2e-2, True)):
        params = replace(QUIET, artifact_coupling=coupling)
        model = WormModel(params, seed=4, fs_hz=FS)
        model.stimulate(300, 6.0 if not railed else 2.0, 3e-3)
        counts = to_adc_counts(model.render(0, 800), gain=1000)
        near, far = counts[:, 0], counts[:, 3]
        assert (near.max() == 32767 and near.min() == -32768) == railed
        assert -32768 < far.min() and far.max() < 32767


def test_hum_has_its_harmonics_in_the_spectrum():
    harmonics = (3.0, 2.0, 1.0)
    params = replace(QUIET, hum_uv=8.0, hum_harmonics_uv=harmonics)
    x = WormModel(params, seed=5, fs_hz=FS).render(0, int(FS)) * 1e6  # 1 s
    amplitude = np.abs(np.fft.rfft(x, axis=0)) * 2 / x.shape[0]  # 1 Hz bins
    for k, a in enumerate((8.0, *harmonics), start=1):
        np.testing.assert_allclose(amplitude[50 * k], a, rtol=1e-6)
    assert np.all(amplitude[250] < 1e-6)
    assert np.all(np.delete(amplitude, [50, 100, 150, 200], axis=0) < 1e-6)
    assert WormParams().hum_harmonics_uv  # the default recording has harmonics


def test_channel_polarity_negates_and_gain_error_scales_everything_recorded():
    def run(**kw):
        model = WormModel(replace(WormParams(), **kw), seed=6, fs_hz=FS)
        model.stimulate(500, 5.5, 3e-3)
        return model.render(0, 3000)

    x = run()
    flipped = run(channel_polarity=(1, -1, 1, 1))
    np.testing.assert_array_equal(flipped[:, 1], -x[:, 1])
    np.testing.assert_array_equal(np.delete(flipped, 1, axis=1), np.delete(x, 1, 1))
    scaled = run(channel_gain_error=(0.0, 0.1, 0.0, -0.05))
    np.testing.assert_allclose(scaled, x * [1.0, 1.1, 1.0, 0.95], rtol=1e-12)
    with pytest.raises(ValueError, match="channel_polarity has 2 entries.*4 channels"):
        WormModel(WormParams(channel_polarity=(1, -1)))
    with pytest.raises(ValueError, match=r"only \+1 and −1"):
        WormParams(channel_polarity=(1, 0, 1, 1))
    assert WormParams().channel_polarity == WormParams().channel_gain_error == ()


def test_chunk_invariance_and_ground_truth_hold_with_every_option_on():
    def run(chunks):
        model = WormModel(ALL_ON, seed=9, fs_hz=FS)
        model.stimulate(2000, 5.9, 3e-3)
        model.stimulate(12_000, 5.0, 2e-3, polarity=1)
        parts, pos = [], 0
        for n in chunks:
            parts.append(model.render(pos, n))
            pos += n
        return model, np.concatenate(parts)

    model, whole = run([20_000])
    np.testing.assert_array_equal(whole, run([300] * 66 + [200])[1])
    np.testing.assert_array_equal(whole, run([4095, 1, 7000, 8904])[1])
    assert model.render(5, 0).shape == (0, 4)
    truth = json.loads(json.dumps(model.ground_truth()))
    assert truth["params"]["spike_shape"] == "triphasic"
    assert truth["params"]["hum_harmonics_uv"] == [4.0, 2.0, 1.0, 0.5]
    assert truth["params"]["channel_polarity"] == [1, -1, 1, -1]
    assert truth["stimuli"][0]["mgf_fired"]
