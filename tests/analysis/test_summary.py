"""A recording's summary (analysis.summary) on small arrays with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from analysis.summary import (
    channel_summaries,
    recruitment_curves,
    summarise,
)

NAN = np.nan


def logistic_trials(threshold_vpp, slope_vpp, duration_s, levels, n_per_level=400):
    """Stimuli whose response counts at each level follow the logistic exactly
    (to one stimulus in ``n_per_level``)."""
    amplitudes, responded = [], []
    for level in levels:
        k = round(n_per_level * float(expit((level - threshold_vpp) / slope_vpp)))
        amplitudes += [level] * n_per_level
        responded += [True] * k + [False] * (n_per_level - k)
    return (
        np.array(amplitudes),
        np.full(len(amplitudes), duration_s),
        np.array(responded),
    )


def test_a_logistic_recruitment_curve_gives_back_its_threshold_and_slope():
    levels = np.linspace(2.0, 5.0, 13)
    a, d, y = logistic_trials(3.4, 0.3, 2e-3, levels)
    (curve,) = recruitment_curves(a, d, y)
    assert curve.duration_s == 0.002 and curve.n == a.size and curve.determined
    assert curve.threshold_vpp == pytest.approx(3.4, abs=0.01)
    assert curve.slope_vpp == pytest.approx(0.3, rel=0.03)
    lo, hi = curve.threshold_ci95_vpp
    assert lo < 3.4 < hi and hi - lo < 0.1  # 5200 stimuli: a narrow interval
    assert curve.probability(3.4) == pytest.approx(0.5, abs=0.01)
    assert curve.probability([0.0, 10.0]) == pytest.approx([0.0, 1.0], abs=1e-4)


def test_durations_equal_to_the_microsecond_are_one_curve_and_unfittable_ones_say_why():
    a, d, y = logistic_trials(3.0, 0.2, 3.3e-3, [2.5, 3.0, 3.5], n_per_level=10)
    d = d + np.where(np.arange(d.size) % 2, 4e-10, -4e-10)  # 0.0033 ± float noise
    all_respond = (np.array([4.0, 5.0, 6.0]), np.full(3, 6.7e-3), np.ones(3, bool))
    no_duration = (np.array([3.0, 3.0, 4.0]), np.full(3, NAN), np.array([0, 1, 1]))
    no_amplitude = (np.full(3, NAN), np.full(3, 3.3e-3), np.array([0, 1, 1]))
    a, d, y = (
        np.concatenate(parts)
        for parts in zip((a, d, y), all_respond, no_duration, no_amplitude)
    )
    curve, every = recruitment_curves(a, d, y)
    assert curve.duration_s == 0.0033 and curve.n == 30 and curve.determined
    assert not every.determined and every.threshold_between_vpp == (0.0, 4.0)
    assert "every one of 3 stimuli evoked a response" in every.reason


def test_channel_medians_count_only_stimuli_that_responded_there():
    latency = [[1e-3, 2e-3], [3e-3, NAN], [5e-3, NAN], [7e-3, 8e-3]]
    amplitude = [[10.0, 20.0], [30.0, NAN], [NAN, NAN], [70.0, 80.0]]
    first, second = channel_summaries(
        latency, amplitude, [True, True, True, False], positions_m=[0.0375, 0.0575]
    )
    assert first.position_mm == pytest.approx(37.5)
    assert first.latency_s_median == pytest.approx(3e-3)  # the 4th did not respond
    assert first.amplitude_uv_median == pytest.approx(20.0)  # a latency, no amplitude
    assert first.response_probability == pytest.approx(3 / 4)
    assert second.latency_s_median == pytest.approx(2e-3)
    assert second.response_probability == pytest.approx(1 / 4)


def test_nothing_analysed_gives_none_in_the_json():
    summary = summarise(
        latency_s=np.empty((0, 2)),
        amplitude_uv=np.empty((0, 2)),
        responded=np.empty(0, bool),
        amplitudes_vpp=[],
        durations_s=[],
        positions_m=[0.04, 0.06],
    )
    out = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert out == {
        "channels": [
            {"index": ch, "position_mm": pytest.approx(mm), "latency_s_median": None,
             "amplitude_uv_median": None, "response_probability": None}
            for ch, mm in ((0, 40.0), (1, 60.0))
        ],
        "recruitment": [],
        "strength_duration": {},
        "habituation": None,
        "fit_amplitudes": "commanded",
    }  # fmt: skip


def test_the_json_keys_are_the_documented_ones():
    a, d, y = (
        np.concatenate(parts)
        for parts in zip(
            logistic_trials(4.0, 0.3, 2e-3, np.arange(3.0, 5.1, 0.5), 10),
            logistic_trials(3.3, 0.3, 6e-3, np.arange(2.5, 4.1, 0.5), 10),
        )
    )
    n = a.size
    latency = np.where(y[:, None], 1e-3, NAN) * np.ones((n, 3))
    summary = summarise(
        latency_s=latency,
        amplitude_uv=latency * 1e5,
        responded=y,
        amplitudes_vpp=a,
        durations_s=d,
        positions_m=[0.04, 0.06, 0.08],
    ).to_dict()
    assert list(summary) == [
        "channels",
        "recruitment",
        "strength_duration",
        "habituation",
        "fit_amplitudes",
    ]
    assert list(summary["channels"][0]) == [
        "index",
        "position_mm",
        "latency_s_median",
        "amplitude_uv_median",
        "response_probability",
    ]
    assert [c["duration_s"] for c in summary["recruitment"]] == [0.002, 0.006]
    assert list(summary["recruitment"][0]) == [
        "duration_s", "n", "n_responses", "link", "determined", "reason",
        "threshold_vpp", "threshold_ci95_vpp", "slope_vpp", "slope_ci95_vpp",
        "separation", "threshold_between_vpp", "amplitude_range_vpp", "summary",
    ]  # fmt: skip
    assert list(summary["strength_duration"]) == ["weiss", "lapicque"]
    weiss = summary["strength_duration"]["weiss"]
    assert list(weiss) == [
        "model", "method", "n", "durations_s", "determined", "reason",
        "rheobase_vpp", "rheobase_ci95_vpp", "rheobase_determined", "chronaxie_s",
        "chronaxie_ci95_s", "chronaxie_determined", "habituation", "summary",
    ]  # fmt: skip
    assert not weiss["determined"] and "2 duration(s)" in weiss["reason"]
    assert summary["habituation"] is None  # no stimulus times given


def test_the_summary_fits_first_pulses_at_the_delivered_amplitude():
    # Trains of 3: the 2nd and 3rd pulses always "respond" (they would ruin
    # the curve); the first pulses follow the logistic at the delivered level.
    a, d, y = logistic_trials(3.0, 0.2, 3e-3, np.arange(2.4, 3.7, 0.2), 40)
    rng = np.random.default_rng(0)
    order = rng.permutation(a.size)
    a, d, y = a[order], d[order], y[order]
    n = a.size
    amps = np.repeat(a, 3)
    durs = np.repeat(d, 3)
    resp = np.column_stack([y, np.ones(n, bool), np.ones(n, bool)]).ravel()
    pulse = np.tile([0, 1, 2], n)
    onsets = (np.arange(n)[:, None] * 20.0 + [0.0, 0.1, 0.2]).ravel()
    latency = np.where(resp[:, None], 1e-3, NAN)
    out = summarise(
        latency_s=latency,
        amplitude_uv=latency * 1e5,
        responded=resp,
        amplitudes_vpp=amps + 1.0,  # the commanded levels: not what the worm got
        durations_s=durs,
        positions_m=[0.04],
        onsets_s=onsets,
        pulse_index=pulse,
        delivered_vpp=amps,
    )
    (curve,) = out.recruitment
    assert curve.n == n and curve.determined
    assert curve.threshold_vpp == pytest.approx(3.0, abs=0.05)
    assert out.amplitude_source == "delivered"
    assert out.habituation is not None and out.habituation.n == n


def test_arrays_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"\(n_stimuli, n_channels\)"):
        channel_summaries([1e-3, 2e-3], [1.0, 2.0], [True, True], positions_m=[0.04])
    with pytest.raises(ValueError, match=r"\(n_stimuli,\)"):
        recruitment_curves([3.0, 4.0], [2e-3], [True, False])
