"""Tests of the independent test-data generator itself (numpy only, fast)."""

from __future__ import annotations

import dataclasses
import re
import wave

import numpy as np
import pytest

from .generator import (
    CONDITIONS,
    EVENTS_HEADER,
    INT16_MAX,
    INT16_MIN,
    Condition,
    make_case,
    random_condition,
    read_spike_recorder_events,
    write_spike_recorder,
)
from .scoring import perfect_result, score

QUIET = dict(
    white_noise_uv=0.0,
    pink_noise_uv=0.0,
    hum_uv=0.0,
    hum_harmonics_uv=(),
    drift_uv=0.0,
    artifact_mv=0.0,
)


def _log_parabola_peak(y: np.ndarray, i: int) -> float:
    """Sub-sample peak of a positive peak at index i (parabola through log values;
    exact for a Gaussian lobe)."""
    a, b, c = np.log(y[i - 1]), np.log(y[i]), np.log(y[i + 1])
    return i + 0.5 * (a - c) / (a - 2 * b + c)


def _parabola_peak(y: np.ndarray, i: int) -> float:
    a, b, c = y[i - 1], y[i], y[i + 1]
    return i + 0.5 * (a - c) / (a - 2 * b + c)


def test_arrival_times_follow_t0_plus_x_over_v():
    cond = Condition(
        recording="single_ended",
        shape="mono",
        width_ms=0.25,
        mgf_velocity_m_per_s=31.0,
        lgf_velocity_m_per_s=12.0,
        uv_per_count=0.01,
        n_stimuli=8,
        t0_jitter_us=40.0,
        **QUIET,
    )
    case = make_case(cond, seed=3)
    fs = case.fs_hz
    x_m = np.asarray(case.positions_mm) / 1000.0
    y = case.samples_uv
    jitters = []
    for st in case.truth.stimuli:
        for f, v in (("mgf", 31.0), ("lgf", 12.0)):
            assert st.fired[f]
            arr = np.asarray(st.arrival_s[f])
            # the truth itself is t_fire + x / v, with t_fire = onset + t0 + jitter
            np.testing.assert_allclose(
                arr - st.fire_time_s[f], x_m / v, rtol=0, atol=1e-12
            )
            t0 = case.truth.fibres[f].t0_ms / 1000.0
            jitters.append(st.fire_time_s[f] - st.onset_s - t0)
            slope = np.polyfit(x_m, arr, 1)[0]
            assert slope == pytest.approx(1.0 / v, rel=1e-9)
            for k, a in enumerate(arr):
                lo, hi = int((a - 4e-4) * fs), int((a + 4e-4) * fs) + 1
                seg = y[lo:hi, k]
                i = int(np.argmax(seg))
                t_log = (lo + _log_parabola_peak(seg, i)) / fs
                t_par = (lo + _parabola_peak(seg, i)) / fs
                assert abs(t_log - a) < 1e-6, (f, k, t_log - a)
                assert abs(t_par - a) < 5e-6, (f, k, t_par - a)
    jitters = np.asarray(jitters)
    assert 0 < np.std(jitters) < 4 * 40e-6  # per-sweep jitter of t0, SD 40 us


def test_differential_centre_is_the_zero_crossing():
    cond = Condition(shape="mono", uv_per_count=0.01, n_stimuli=4, **QUIET)
    case = make_case(cond, seed=5)
    fs = case.fs_hz
    y = case.samples_uv
    for st in case.truth.stimuli:
        for k, a in enumerate(st.arrival_s["mgf"]):
            lo, hi = int((a - 3e-4) * fs), int((a + 3e-4) * fs) + 1
            seg = y[lo:hi, k]
            i = int(np.argmax(seg))
            j = i + int(np.argmin(seg[i:]))
            z = i + int(
                np.nonzero(seg[i:j] > 0)[0][-1]
            )  # last positive before the trough
            t_zero = (lo + z + seg[z] / (seg[z] - seg[z + 1])) / fs
            assert abs(t_zero - a) < 3e-6, (k, t_zero - a)


def test_hum_at_stated_frequency():
    cond = Condition(
        hum_hz=60.0,
        hum_uv=150.0,
        hum_harmonics_uv=(60.0,),
        white_noise_uv=10.0,
        pink_noise_uv=10.0,
        drift_uv=0.0,
        artifact_mv=0.0,
        mgf_velocity_m_per_s=None,
        n_stimuli=8,
    )
    case = make_case(cond, seed=2)
    y = case.samples_uv
    n = y.shape[0]
    freqs = np.fft.rfftfreq(n, 1.0 / case.fs_hz)
    for k in range(case.n_channels):
        amp = 2.0 * np.abs(np.fft.rfft(y[:, k] - y[:, k].mean())) / n
        band = (freqs > 20) & (freqs < 1000)
        f_peak = freqs[band][np.argmax(amp[band])]
        assert abs(f_peak - 60.0) <= freqs[1], f_peak
        i60 = int(np.argmin(np.abs(freqs - 60.0)))
        i120 = int(np.argmin(np.abs(freqs - 120.0)))
        a60 = amp[i60 - 2 : i60 + 3].max()
        a120 = amp[i120 - 2 : i120 + 3].max()
        assert 0.4 * 150 < a60 < 1.05 * 150
        assert 0.4 * 60 < a120 < 1.05 * 60
        assert amp[int(np.argmin(np.abs(freqs - 50.0)))] < 10.0  # nothing at 50 Hz


def test_clipping_hits_int16_range():
    cond = dataclasses.replace(CONDITIONS["artifact_clipped"], n_stimuli=6)
    case = make_case(cond, seed=0)
    counts = case.samples_counts
    assert counts.dtype == np.int16
    assert case.uv_per_count == pytest.approx(0.4 * 4000.0 / INT16_MAX)
    nearest = int(np.argmin(case.positions_mm))
    ch = counts[:, nearest]
    assert ch.max() == INT16_MAX and ch.min() == INT16_MIN
    fs = case.fs_hz
    for st in case.truth.stimuli:
        i0 = int(st.onset_s * fs)
        seg = ch[i0 : i0 + int(0.02 * fs)]
        railed_ms = (
            np.count_nonzero((seg == INT16_MAX) | (seg == INT16_MIN)) / fs * 1000
        )
        assert 1.0 < railed_ms < 5.0, railed_ms
    farthest = int(np.argmax(case.positions_mm))
    assert case.truth.railed_fraction[farthest] == 0.0


def test_events_file_parses_and_rounds(tmp_path):
    for decimals in (3, 4):
        cond = dataclasses.replace(
            CONDITIONS["extra_marker_lines"], marker_decimals=decimals, n_stimuli=6
        )
        case = make_case(cond, seed=7)
        wav_path, ev_path = write_spike_recorder(case, tmp_path / f"rec{decimals}.wav")
        assert ev_path.name == f"rec{decimals}-events.txt"
        lines = ev_path.read_text().splitlines()
        assert tuple(lines[:2]) == EVENTS_HEADER
        pattern = re.compile(rf"^[^,\s]+,\t\d+\.\d{{{decimals}}}$")
        assert all(pattern.match(line) for line in lines[2:]), lines[2:5]
        parsed = read_spike_recorder_events(ev_path)
        assert parsed == case.markers
        times = [t for _, t in parsed]
        assert times == sorted(times)
        ids = {m for m, _ in parsed}
        assert {"1", "_neuron0", "threshold"} <= ids
        stim = [m for m in parsed if m[0] == "1"]
        assert len(stim) == len(case.truth.stimuli)
        for (_, t), st in zip(stim, case.truth.stimuli):
            assert t == st.marker_time_s == round(st.onset_s, decimals)
            assert abs(t - st.onset_s) <= 0.5 * 10.0**-decimals + 1e-12
        with wave.open(str(wav_path), "rb") as w:
            assert w.getnchannels() == case.n_channels
            assert w.getsampwidth() == 2
            assert w.getframerate() == int(case.fs_hz)
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        np.testing.assert_array_equal(
            raw.reshape(-1, case.n_channels), case.samples_counts
        )


def test_mixed_durations_marker_ids():
    cond = dataclasses.replace(CONDITIONS["mixed_durations"], n_stimuli=10)
    case = make_case(cond, seed=1)
    assert set(case.stimulus_marker_ids) == {"1", "2"}
    assert case.pulse_ms_given_by_id == {"1": 3.0, "2": 5.0}
    for st in case.truth.stimuli:
        assert st.pulse_ms_true == {"1": 3.0, "2": 5.0}[st.marker_id]
    assert sum(st.marker_id == "1" for st in case.truth.stimuli) == 5


def test_determinable_logic():
    bad = make_case(CONDITIONS["not_determinable_snr1"], seed=0)
    assert bad.truth.determinable == {"mgf": False, "lgf": False}
    assert max(bad.truth.snr_per_pair["mgf"]) < 2.5
    good = make_case(
        dataclasses.replace(CONDITIONS["baseline_two_fibres"], n_stimuli=10), 0
    )
    assert good.truth.determinable == {"mgf": True, "lgf": True}
    assert min(good.truth.snr_per_pair["mgf"]) >= 5
    rare = make_case(CONDITIONS["lgf_rare_15pct"], seed=0)
    assert rare.truth.fibres["lgf"].fire_fraction < 0.3
    assert not rare.truth.determinable["lgf"] and rare.truth.determinable["mgf"]
    # MGF arrives inside a 7 ms pulse on every pair: not determinable
    long_pulse = make_case(
        dataclasses.replace(CONDITIONS["artifact_7ms_tail_10"], n_stimuli=6), 0
    )
    assert (
        not long_pulse.truth.determinable["mgf"]
        and long_pulse.truth.determinable["lgf"]
    )
    # exactly three usable pairs; killing one makes it not determinable
    three = Condition(
        positions_mm=(35.0, 58.0, 105.0, 122.0, 140.0), pulse_ms_true=3.0, n_stimuli=6
    )
    c3 = make_case(three, seed=0)
    assert c3.truth.fibres["mgf"].usable_pairs == (False, False, True, True, True)
    assert c3.truth.determinable["mgf"]
    for fault in ("dead_channel", "railed_channel"):
        c2 = make_case(dataclasses.replace(three, **{fault: 3}), seed=0)
        assert c2.truth.snr_per_pair["mgf"][3] == 0.0
        assert not c2.truth.determinable["mgf"]
    # snr scales with amplitude
    half = make_case(dataclasses.replace(three, mgf_spike_uv=100.0), seed=0)
    np.testing.assert_allclose(
        np.asarray(half.truth.snr_per_pair["mgf"]) * 2,
        c3.truth.snr_per_pair["mgf"],
        rtol=1e-9,
    )
    # absent fibre
    assert good.truth.velocity_m_per_s["lgf"] == 13.0
    mgf_only = make_case(dataclasses.replace(three), seed=0)
    assert mgf_only.truth.velocity_m_per_s["lgf"] is None
    assert mgf_only.truth.determinable["lgf"] is False


def test_reversed_channel_is_the_negation():
    base = Condition(
        lgf_velocity_m_per_s=13.0, n_stimuli=6, drift_uv=300.0, hum_uv=150.0
    )
    a = make_case(base, seed=11).samples_counts.astype(np.int32)
    b = make_case(dataclasses.replace(base, reversed_channel=2), seed=11).samples_counts
    b = b.astype(np.int32)
    np.testing.assert_array_equal(b[:, 2], -a[:, 2])
    np.testing.assert_array_equal(np.delete(b, 2, axis=1), np.delete(a, 2, axis=1))
    big = make_case(
        dataclasses.replace(base, reversed_channel=2, reversed_largest=True), 11
    )
    for f in ("mgf", "lgf"):
        amps = big.truth.fibres[f].amplitude_uv_per_pair
        assert int(np.argmax(amps)) == 2


def test_dead_and_railed_channels():
    cond = Condition(dead_channel=1, dead_mode="zeros", railed_channel=4, n_stimuli=4)
    case = make_case(cond, seed=0)
    assert not case.samples_counts[:, 1].any()
    assert (case.samples_counts[:, 4] == INT16_MAX).all()
    assert case.truth.bad_channels == (1, 4)
    noisy = make_case(dataclasses.replace(cond, dead_mode="noise"), seed=0)
    dead = noisy.samples_uv[:, 1]
    assert 10.0 < dead.std() < 40.0  # white 20 + pink 15 uV RMS, no artifact or spikes


def test_all_named_conditions_generate():
    assert 40 <= len(CONDITIONS) <= 60
    for name, cond in CONDITIONS.items():
        case = make_case(dataclasses.replace(cond, n_stimuli=3), seed=0)
        assert case.samples_counts.dtype == np.int16, name
        assert case.samples_counts.shape[1] == len(cond.positions_mm), name
        assert len(case.truth.stimuli) == 3, name
        if name.startswith("not_determinable"):
            assert not any(case.truth.determinable.values()), name


def test_random_conditions_generate():
    rng = np.random.default_rng(123)
    for _ in range(6):
        cond = random_condition(rng)
        assert 4 <= len(cond.positions_mm) <= 8
        assert max(cond.positions_mm) <= 140.0 + 1e-6
        gaps = np.diff(cond.positions_mm)
        assert (gaps >= 10.0 - 0.2).all() and (gaps <= 40.0 + 1e-6).all()
        assert 25 <= cond.mgf_velocity_m_per_s <= 35
        assert (
            cond.lgf_velocity_m_per_s is None or 10 <= cond.lgf_velocity_m_per_s <= 17
        )
        case = make_case(dataclasses.replace(cond, n_stimuli=3, fs_hz=10000.0), seed=1)
        assert case.samples_counts.dtype == np.int16


def test_scoring_verdicts():
    case = make_case(
        dataclasses.replace(CONDITIONS["mgf_half_sweeps"], n_stimuli=12), seed=4
    )
    perfect = perfect_result(case)
    s = score(perfect, case)
    assert s["passed"], s
    assert s["fibres"]["mgf"]["verdict"] == "ok"
    assert s["fibres"]["mgf"]["invented_fraction"] == 0.0
    wrong = perfect_result(case)
    wrong["fibres"]["lgf"]["median"] *= 1.05
    assert score(wrong, case)["fibres"]["lgf"]["verdict"] == "wrong"
    missed = perfect_result(case)
    missed["fibres"]["mgf"] = {"median": None, "n": 0, "determined": False}
    assert score(missed, case)["fibres"]["mgf"]["verdict"] == "missed"
    invented = perfect_result(case)
    for st, entry in zip(case.truth.stimuli, invented["stimuli"]):
        if not st.fired["mgf"]:
            entry["volleys"].append(
                {"fibre": "mgf", "conduction_velocity_m_per_s": 30.0}
            )
    s = score(invented, case)
    assert s["fibres"]["mgf"]["invented_fraction"] > 0.05 and not s["passed"]
    nothing = {"fibres": {}, "stimuli": [{"volleys": []}] * 3}
    bad = make_case(
        dataclasses.replace(CONDITIONS["not_determinable_snr2"], n_stimuli=3), 0
    )
    s = score(nothing, bad)
    assert s["passed"]
    assert s["fibres"]["mgf"]["verdict"] == "not_determined_ok"
    assert s["fibres"]["lgf"]["verdict"] == "not_determined_ok"
    ghost = {
        "fibres": {"lgf": {"median": 12.0, "n": 3, "determined": True}},
        "stimuli": [{"volleys": []}] * 3,
    }
    assert score(ghost, bad)["fibres"]["lgf"]["verdict"] == "wrong"
