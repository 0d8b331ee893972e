"""Where the worm is stimulated: site-dependent thresholds (MGF anterior, LGF
posterior), spikes started under the cathode travelling both ways, the twitch
strongest near the site (issue 18 item 2; docs/simulated-rig.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import curve_fit
from scipy.special import erf

from firmware_bridge.sim import (
    RacewayGeometry,
    WormModel,
    WormParams,
    anterior_field_weight,
    response_probability,
    site_threshold_ratio,
    threshold_vpp,
)

FS = 30_000.0
P = WormParams()
RESTED = WormParams(habituation_per_stimulus=0.0)
QUIET = WormParams(
    habituation_per_stimulus=0.0, noise_uv_rms=0.0, hum_uv=0.0,
    hum_harmonics_uv=(), drift_uv=0.0, artifact_coupling=0.0,
)  # fmt: skip
sites = st.floats(0.0, P.mgf_field_end_m * 3, allow_nan=False)
durations = st.floats(1e-3, 7e-3)


@given(durations)
def test_no_site_keeps_the_classic_head_pair_numbers_exactly(duration_s):
    # The formulas as they were before sites existed: unchanged to the bit.
    mgf = P.mgf_rheobase_vpp * (1.0 + P.chronaxie_s / duration_s)
    assert threshold_vpp(P, duration_s) == mgf
    assert threshold_vpp(P, duration_s, "lgf") == mgf * P.lgf_threshold_ratio
    assert threshold_vpp(P, duration_s, "mgf", None) == mgf
    sd = P.threshold_noise_cv * mgf
    expected = 0.5 * (1.0 + math.erf((4.0 - mgf) / (sd * math.sqrt(2.0))))
    assert response_probability(P, 4.0, duration_s) == expected


def test_anterior_field_spans_the_overlap_behind_the_clitellum():
    end, overlap = P.mgf_field_end_m, P.giant_field_overlap_m
    assert anterior_field_weight(P, end) == pytest.approx(0.5)
    assert anterior_field_weight(P, end - overlap / 2) == pytest.approx(0.9)
    assert anterior_field_weight(P, end + overlap / 2) == pytest.approx(0.1)
    assert anterior_field_weight(P, None) == 1.0
    assert anterior_field_weight(P, 1e3) == 0.0  # far beyond: no overflow
    # Under the head and at the tail the ratios are the head's and the tail's.
    for fibre, head, tail in (
        ("mgf", 1.0, P.mgf_posterior_threshold_ratio),
        ("lgf", P.lgf_threshold_ratio, P.lgf_posterior_threshold_ratio),
    ):
        assert site_threshold_ratio(P, fibre, 0.004) == pytest.approx(head, rel=1e-5)
        assert site_threshold_ratio(P, fibre, 0.140) == pytest.approx(tail, rel=1e-5)
    with pytest.raises(ValueError, match="fibre 'xgf' is not one of"):
        site_threshold_ratio(P, "xgf", 0.05)


@given(sites, sites, durations)
def test_mgf_prefers_anterior_sites_and_lgf_posterior_ones(a_m, b_m, duration_s):
    front, back = sorted((a_m, b_m))
    mgf = [threshold_vpp(P, duration_s, "mgf", x) for x in (front, back)]
    lgf = [threshold_vpp(P, duration_s, "lgf", x) for x in (front, back)]
    assert mgf[0] <= mgf[1] and lgf[0] >= lgf[1]
    # MGF/LGF selectivity: the ratio of thresholds falls monotonically backwards.
    assert lgf[0] / mgf[0] >= lgf[1] / mgf[1] * (1 - 1e-12)


def test_head_recruits_the_mgf_first_and_the_tail_the_lgf_alone():
    head, tail = 0.004, 0.140
    assert threshold_vpp(P, 3e-3, "mgf", head) < threshold_vpp(P, 3e-3, "lgf", head)
    assert threshold_vpp(P, 3e-3, "lgf", tail) < threshold_vpp(P, 3e-3, "mgf", tail)
    # A window of amplitudes at the tail fires the LGF ≥ 95 % and the MGF ≤ 5 %.
    window = [
        a
        for a in np.arange(2.0, 6.01, 0.05)
        if response_probability(P, a, 3e-3, "lgf", tail) >= 0.95
        and response_probability(P, a, 3e-3, "mgf", tail) <= 0.05
    ]
    assert len(window) >= 10


@pytest.mark.parametrize("electrode", [0, 7])
def test_measured_threshold_at_a_site_matches_the_prediction(electrode):
    # Empirical 50 % points from the model's draws agree with threshold_vpp.
    model = WormModel(RESTED, seed=11 + electrode, fs_hz=FS)
    site = model.geometry.site_m(electrode)
    rng = np.random.default_rng(electrode)
    duration = 3e-3
    amplitudes = rng.uniform(2.0, 6.0, 1500)
    fired = {"mgf": [], "lgf": []}
    for k, a in enumerate(amplitudes):  # 1 s apart: rested
        out = model.stimulate(int(k * FS), a, duration, cathode=electrode, anode=None)
        assert out.site_m == site and (out.cathode, out.anode) == (electrode, None)
        fired["mgf"].append(out.mgf_fired)
        fired["lgf"].append(out.lgf_fired)

    def cdf(x, mu, sd):
        return 0.5 * (1 + erf((x - mu) / (sd * np.sqrt(2))))

    for fibre in ("mgf", "lgf"):
        truth = threshold_vpp(RESTED, duration, fibre, site)
        if truth > 5.6:  # beyond the sweep: the fibre must stay (nearly) silent
            assert np.mean(fired[fibre]) < 0.05
            continue
        y = np.array(fired[fibre], float)
        (mu, _), _ = curve_fit(cdf, amplitudes, y, p0=(truth, 0.2))
        assert mu == pytest.approx(truth, rel=0.02)


@pytest.mark.parametrize("electrode", [0, 4, 7])
def test_spikes_start_under_the_cathode_and_travel_both_ways(electrode):
    geometry = RacewayGeometry.evenly_spaced(12, first_m=0.010, last_m=0.145)
    model = WormModel(RESTED, geometry, seed=3, fs_hz=FS)
    site = geometry.site_m(electrode)
    out = model.stimulate(1000, 5.9, 5e-3, cathode=electrode, anode=None)
    assert out.mgf_fired and out.lgf_fired
    a = np.array([x for x, _ in geometry.recording_pairs_m])
    b = np.array([x for _, x in geometry.recording_pairs_m])
    for fibre, v in (("mgf", 30.0), ("lgf", 15.0)):
        peaks = np.array(getattr(out, f"{fibre}_spike_samples"))
        expected = (
            1000
            + (RESTED.utilisation_s + 0.5 * (abs(a - site) + abs(b - site)) / v) * FS
        )
        np.testing.assert_allclose(peaks, expected, rtol=0, atol=1e-6)
        # Latencies fall towards the site and rise beyond it.
        lowest = int(np.argmin(peaks))
        assert np.all(np.diff(peaks[: lowest + 1]) < 0)
        assert np.all(np.diff(peaks[lowest:]) > 0)
        if 0 < electrode < 7:
            assert 0 < lowest < geometry.n_channels - 1  # pairs on both sides


def test_rendered_spike_reaches_pairs_on_both_sides_of_a_middle_site():
    # Only the spike: each pair's largest deflection is at its predicted time.
    model = WormModel(replace(QUIET, lgf_threshold_ratio=10.0,
                              lgf_posterior_threshold_ratio=10.0),
                      seed=4, fs_hz=300_000.0)  # fmt: skip
    out = model.stimulate(3000, 5.5, 3e-3, cathode=4, anode=5)
    assert out.mgf_fired and not out.lgf_fired
    x = model.render(0, 12_000)
    centres = model.geometry.pair_centres_m()
    assert np.any(centres < out.site_m) and np.any(centres > out.site_m)
    for ch, peak in enumerate(out.mgf_spike_samples):
        lo = int(peak) - 600
        seg = np.abs(x[lo : lo + 1200, ch])
        assert seg.max() > 20e-6
        assert abs(lo + np.argmax(seg) - peak) < 0.4e-3 * 300_000


@given(st.integers(0, 7))
def test_contraction_is_strongest_at_the_stimulated_site(electrode):
    model = WormModel(RESTED, seed=5, fs_hz=FS)
    site = model.geometry.site_m(electrode)
    profile = model.contraction_profile(site)
    seg_pos = np.linspace(0, model.geometry.worm_length_m, model.geometry.n_segments)
    assert abs(seg_pos[np.argmax(profile)] - site) <= 1.1e-3
    far = np.abs(seg_pos - site)
    assert np.all(np.diff(profile[np.argsort(far)]) <= 1e-15)  # falls with distance
    assert profile.min() >= 0.5 - 1e-12


def test_a_tail_stimulus_shortens_the_tail_most_a_head_stimulus_the_head():
    strains = {}
    for electrode in (0, 7):
        model = WormModel(RESTED, seed=6, fs_hz=FS)
        out = model.stimulate(0, 5.9, 3e-3, cathode=electrode, anode=None)
        assert out.mgf_fired or out.lgf_fired
        strains[electrode] = model.segment_strain(int(0.3 * FS))[0]
    head, tail = strains[0], strains[7]
    assert head[0] < head[-1] < 0 and tail[-1] < tail[0] < 0  # negative = shorter
    # The classic profile for a stimulus under the head: unchanged in shape.
    classic = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi / 2, 140)) ** 2
    np.testing.assert_allclose(
        WormModel(RESTED).contraction_profile(0.0), classic, rtol=1e-15, atol=0
    )


def test_artifact_follows_the_configuration():
    model = WormModel(P, seed=7, fs_hz=FS)
    classic = model.artifact_gain(0, 1)
    centres = model.geometry.pair_centres_m()
    np.testing.assert_allclose(  # the classic pair: centred at 8 mm, as before
        classic, P.artifact_coupling * np.exp(-np.abs(centres - 0.008) / 0.015)
    )
    middle = model.artifact_gain(4, None)
    assert np.argmax(middle) == int(np.argmin(np.abs(centres - 0.067)))
    assert middle.max() > classic.max()
    # Against the common return: centred on the cathode, the coupling larger.
    np.testing.assert_allclose(
        middle,
        P.artifact_coupling
        * P.artifact_common_return_factor
        * np.exp(-np.abs(centres - 0.067) / 0.015),
    )
    assert model.artifact_gain(4, None) is middle  # made once per configuration


def test_bad_configurations_and_electrodes_are_refused_in_one_line():
    model = WormModel(P, seed=8, fs_hz=FS)
    with pytest.raises(ValueError, match=r"cathode 8 is not an electrode; allowed 0–7"):
        model.stimulate(0, 3.0, 3e-3, cathode=8)
    with pytest.raises(ValueError, match=r"anode 2: allowed an electrode 0–7 other"):
        model.stimulate(0, 3.0, 3e-3, cathode=2, anode=2)
    with pytest.raises(ValueError, match="stim_electrodes_m has 17 electrodes"):
        RacewayGeometry(stim_electrodes_m=tuple(np.linspace(0.001, 0.1, 17)))
    with pytest.raises(ValueError, match="ascending positions within the worm"):
        RacewayGeometry(stim_electrodes_m=(0.01, 0.005))
    with pytest.raises(ValueError, match="mgf_posterior_threshold_ratio=0"):
        WormParams(mgf_posterior_threshold_ratio=0.0)


def test_the_documented_threshold_table_is_the_models():
    # docs/simulated-rig.md, "Where the worm is stimulated": the 3 ms thresholds.
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "simulated-rig.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("MGF", "LGF") and len(cells) == 5:
            rows[cells[0].lower()] = [float(c) for c in cells[1:]]
    assert set(rows) == {"mgf", "lgf"}
    for fibre, documented in rows.items():
        got = [threshold_vpp(P, 3e-3, fibre, x) for x in (0.004, 0.047, 0.067, 0.140)]
        assert documented == pytest.approx([round(v, 2) for v in got], abs=1e-9)
