"""analysis.fits on data made here, by code that shares nothing with it: plain
numpy Bernoulli draws from a known logistic or normal curve, strength–duration
thresholds with noise, a habituating worm written out in a few lines. The 95 %
intervals must cover the truth in 85–99 % of the simulated datasets."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.fits import (
    fit_habituation,
    fit_recruitment,
    fit_strength_duration,
    fit_strength_duration_trials,
    habituation_load,
    sd_threshold_vpp,
    separation,
)

COVERED = (0.85, 0.99)


def logistic(v, threshold, slope):
    return 1.0 / (1.0 + np.exp(-(v - threshold) / slope))


def weiss(d, rheobase, chronaxie):
    return rheobase * (1.0 + chronaxie / d)


def lapicque(d, rheobase, chronaxie):
    tau = chronaxie / math.log(2.0)
    return rheobase / (1.0 - np.exp(-d / tau))


def covers(ci, truth) -> bool:
    lo, hi = ci
    return lo <= truth <= hi


@pytest.mark.slow
def test_recruitment_intervals_cover_the_truth_over_200_datasets():
    threshold, slope = 3.0, 0.25
    levels = np.repeat(np.linspace(2.0, 4.0, 9), 6)  # 54 stimuli
    hits = {"threshold": 0, "slope": 0}
    fitted = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        responded = rng.random(levels.size) < logistic(levels, threshold, slope)
        fit = fit_recruitment(levels, responded)
        if not fit.determined:  # separation: checked below, not counted here
            continue
        fitted += 1
        hits["threshold"] += covers(fit.threshold_ci95_vpp, threshold)
        hits["slope"] += covers(fit.slope_ci95_vpp, slope)
    assert fitted >= 190
    for name, n in hits.items():
        assert COVERED[0] <= n / fitted <= COVERED[1], (name, n, fitted)


def test_probit_recruitment_covers_a_normal_threshold_distribution():
    # The simulated worm's rule, written out: it fires when V exceeds a
    # threshold drawn from N(3, 0.2²); P = Φ((V − 3)/0.2).
    levels = np.repeat(np.linspace(2.5, 3.5, 6), 8)
    hits = fitted = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        fires = levels >= rng.normal(3.0, 0.2, levels.size)
        fit = fit_recruitment(levels, fires, link="probit")
        if fit.determined:
            fitted += 1
            hits += covers(fit.threshold_ci95_vpp, 3.0) and covers(
                fit.slope_ci95_vpp, 0.2
            )
    assert fitted >= 95 and hits / fitted >= 0.85


@pytest.mark.parametrize(
    ("amplitudes", "responded", "kind", "between"),
    [
        ([2.0, 2.5, 3.0, 3.5, 4.0], [0, 0, 0, 1, 1], "complete", (3.0, 3.5)),
        ([2.0, 3.0, 3.0, 3.0, 4.0], [0, 0, 1, 1, 1], "quasi-complete", (2.0, 4.0)),
        # Mixed at an end of the range: nothing bounds the far side (half
        # respond at 3 Vpp: the 50 % point may lie below it; 1 in 4 at 5 Vpp:
        # above it, beyond what was tried).
        ([3.0, 3.0, 4.0, 4.0], [0, 1, 1, 1], "quasi-complete", (0.0, 4.0)),
        (
            [2, 3, 4, 5, 5, 5, 5],
            [0, 0, 0, 1, 0, 0, 0],
            "quasi-complete",
            (4.0, math.inf),
        ),
    ],
)
def test_separated_responses_give_an_interval_not_a_slope(
    amplitudes, responded, kind, between
):
    fit = fit_recruitment(amplitudes, responded, duration_s=3e-3)
    assert not fit.determined and fit.separation == kind
    assert fit.threshold_between_vpp == between
    assert math.isnan(fit.slope_vpp) and math.isnan(fit.threshold_vpp)
    assert fit.describe().startswith(f"threshold between {between[0]:g} and")
    out = json.loads(json.dumps(fit.to_dict(), allow_nan=False))
    json_between = [v if math.isfinite(v) else None for v in between]  # open: null
    assert out["slope_vpp"] is None and out["threshold_between_vpp"] == json_between
    assert separation(amplitudes, responded) == (kind, between)


def test_the_issue_s_three_separated_durations_no_longer_share_one_threshold():
    # Perfect separation at three durations gave three "thresholds" of
    # 3.444720458984383 V with slopes of ~7e-6 V: the optimiser's stopping point.
    levels = np.repeat(np.arange(2.0, 6.01, 0.5), 3)
    for switch in (3.25, 3.75, 4.25):
        fit = fit_recruitment(levels, levels > switch)
        assert fit.separation == "complete"
        assert fit.threshold_between_vpp == (switch - 0.25, switch + 0.25)


def test_one_outcome_only_or_falling_responses_are_not_determined():
    none = fit_recruitment([2.0, 3.0, 4.0], [0, 0, 0])
    assert none.threshold_between_vpp == (4.0, math.inf)
    assert none.to_dict()["threshold_between_vpp"] == [4.0, None]
    falling = fit_recruitment([2.0, 3.0, 4.0, 5.0], [1, 1, 0, 0])
    assert not falling.determined and "do not rise" in falling.reason
    flat = fit_recruitment(np.repeat([2.0, 3.0, 4.0, 5.0], 10), np.tile([0, 1], 20))
    assert not flat.determined and "barely depend on amplitude" in flat.reason
    two = fit_recruitment([3.0, 4.0], [0, 1])
    assert not two.determined and "at least 3 stimuli" in two.reason


@pytest.mark.slow
@pytest.mark.parametrize(
    ("generate", "model"), [(lapicque, "lapicque"), (weiss, "weiss")]
)
def test_strength_duration_intervals_cover_the_truth_over_200_datasets(generate, model):
    rheobase, chronaxie = 2.9, 0.5e-3
    d = np.array([0.1, 0.2, 0.5, 1.0, 2.0, 5.0]) * 1e-3
    hits = {"rheobase": 0, "chronaxie": 0}
    determined = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        thresholds = generate(d, rheobase, chronaxie) * np.exp(
            rng.normal(0, 0.04, d.size)
        )
        fit = fit_strength_duration(d, thresholds, model=model)
        determined += fit.determined
        hits["rheobase"] += covers(fit.rheobase_ci95_vpp, rheobase)
        hits["chronaxie"] += covers(fit.chronaxie_ci95_s, chronaxie)
    assert determined >= 190
    for name, n in hits.items():
        assert COVERED[0] <= n / 200 <= COVERED[1], (name, n)


def test_strength_duration_says_when_the_design_cannot_answer():
    two = fit_strength_duration([2e-3, 6e-3], [4.35, 3.4])
    assert not two.determined and "needs 3 or more" in two.reason
    assert two.rheobase_ci95_vpp is None and math.isnan(two.rheobase_vpp)
    # The classroom's 2–6.7 ms against a 0.06 ms chronaxie: thresholds flat
    # within the noise. The rheobase is the plateau; the chronaxie only bounded.
    d = np.array([2.0, 3.3, 5.0, 6.7]) * 1e-3
    flat = fit_strength_duration(d, weiss(d, 2.9, 0.06e-3) * [1.01, 0.98, 1.0, 1.01])
    assert flat.rheobase_determined and not flat.chronaxie_determined
    assert covers(flat.rheobase_ci95_vpp, 2.9)
    lo, hi = flat.chronaxie_ci95_s
    assert lo == 0.0 and 0.06e-3 < hi < 2e-3
    assert "below the tested range" in flat.reason
    assert "at most" in flat.describe()
    rising = fit_strength_duration(d, [2.8, 2.9, 3.0, 3.1])
    assert not rising.chronaxie_determined and rising.chronaxie_ci95_s[0] == 0.0
    charge = fit_strength_duration(d, 6e-3 / d * [1.0, 1.01, 0.99, 1.0])
    assert not charge.determined and not charge.rheobase_determined
    assert json.dumps(charge.to_dict(), allow_nan=False)


def test_strength_duration_laws_meet_at_the_chronaxie():
    for model in ("weiss", "lapicque"):
        assert sd_threshold_vpp(model, 2.0, 0.4e-3, [0.4e-3]) == pytest.approx([4.0])
    d = np.array([0.1, 1.0, 10.0]) * 1e-3
    assert sd_threshold_vpp("lapicque", 2.0, 0.4e-3, d) == pytest.approx(
        lapicque(d, 2.0, 0.4e-3)
    )


def habituating_worm(seed, durations, levels, *, isi_s, pause_s, repeats, eta):
    """A worm whose threshold is Weiss's × (1 + η·h) with normal scatter
    (CV 7 %); h counts earlier stimuli, each decaying with τ = 30 s. Written
    here from the description, not from either model's code."""
    rng = np.random.default_rng(seed)
    combos = [(v, d) for d in durations for v in levels]
    amplitudes, ds, onsets = [], [], []
    t = 0.0
    for rep in range(repeats):
        t += pause_s if rep else 0.0
        for k in rng.permutation(len(combos)):
            amplitudes.append(combos[k][0])
            ds.append(combos[k][1])
            onsets.append(t)
            t += isi_s
    fired, h, last = [], 0.0, None
    for v, d, t in zip(amplitudes, ds, onsets, strict=True):
        if last is not None:
            h = (h + 1.0) * np.exp(-(t - last) / 30.0)
        last = t
        mean = weiss(d, 2.9, 0.3e-3) * (1.0 + eta * h)
        fired.append(v >= mean * (1.0 + 0.07 * rng.standard_normal()))
    return np.array(amplitudes), np.array(ds), np.array(fired), np.array(onsets)


@pytest.mark.slow
def test_trial_level_strength_duration_and_habituation_cover_the_truth():
    durations = np.array([0.1, 0.3, 1.0, 3.0]) * 1e-3
    levels = np.linspace(2.6, 13.5, 20)  # spans every duration's threshold
    hits = {"rheobase": 0, "chronaxie": 0, "eta": 0}
    n = 60
    for seed in range(n):
        a, d, y, t = habituating_worm(
            seed, durations, levels, isi_s=3.0, pause_s=60.0, repeats=3, eta=0.01
        )
        fit = fit_strength_duration_trials(a, d, y, onsets_s=t)
        hits["rheobase"] += covers(fit.rheobase_ci95_vpp, 2.9)
        hits["chronaxie"] += covers(fit.chronaxie_ci95_s, 0.3e-3)
        hits["eta"] += covers(fit.habituation.per_stimulus_ci95, 0.01)
    for name, k in hits.items():
        assert k / n >= COVERED[0], (name, k)


def test_ignoring_habituation_biases_the_rheobase_and_modelling_it_does_not():
    durations = np.array([0.1, 0.3, 1.0, 3.0]) * 1e-3
    levels = np.linspace(2.6, 13.5, 20)
    naive, modelled = [], []
    for seed in range(8):
        a, d, y, t = habituating_worm(
            seed, durations, levels, isi_s=2.0, pause_s=0.0, repeats=3, eta=0.01
        )
        naive.append(fit_strength_duration_trials(a, d, y).rheobase_vpp)
        modelled.append(fit_strength_duration_trials(a, d, y, onsets_s=t).rheobase_vpp)
    assert np.median(naive) > 2.9 * 1.08  # at 2 s the load settles near 15
    assert np.median(modelled) == pytest.approx(2.9, rel=0.05)


def test_habituation_is_measured_on_a_one_duration_recruitment_design():
    a, d, y, t = habituating_worm(
        3, [3e-3], np.linspace(2.0, 6.0, 17), isi_s=2.0, pause_s=60.0, repeats=5,
        eta=0.02,
    )  # fmt: skip
    hab = fit_habituation(a, y, t, d)
    assert hab.determined and covers(hab.per_stimulus_ci95, 0.02)
    assert hab.load_max == pytest.approx(habituation_load(t).max())
    assert "per recent stimulus" in hab.describe()
    assert json.dumps(hab.to_dict(), allow_nan=False)
    rested = fit_habituation(a[:5], y[:5], t[:5])
    assert not rested.determined and "too few" in rested.reason


def test_bad_inputs_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"must be \(n_stimuli,\)"):
        fit_recruitment([3.0, 4.0], [1])
    with pytest.raises(ValueError, match="finite and > 0"):
        fit_recruitment([3.0, -1.0, 4.0], [0, 0, 1])
    with pytest.raises(ValueError, match="0/1"):
        fit_recruitment([3.0, 3.5, 4.0], [0, 2, 1])
    with pytest.raises(ValueError, match="link 'logistic' is not one of"):
        fit_recruitment([3.0, 3.5, 4.0], [0, 1, 1], link="logistic")
    with pytest.raises(ValueError, match="model 'hill' is not one of"):
        fit_strength_duration([1e-3, 2e-3, 3e-3], [3, 2, 1], model="hill")
    with pytest.raises(ValueError, match="order delivered"):
        habituation_load([0.0, 2.0, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.5, 1.0, 2.0, 2.5, 3.0, 3.01, 4.0, 6.0, 19.9]),
            st.booleans(),
        ),
        min_size=0,
        max_size=30,
    )
)
def test_any_recruitment_data_give_a_verdict_without_warnings(trials):
    amplitudes = [a for a, _ in trials]
    responded = [r for _, r in trials]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_recruitment(amplitudes, responded)
    json.dumps(fit.to_dict(), allow_nan=False)
    if fit.determined:
        lo, hi = fit.threshold_ci95_vpp
        assert lo <= fit.threshold_vpp <= hi
        assert fit.slope_ci95_vpp[0] <= fit.slope_vpp <= fit.slope_ci95_vpp[1]
    else:
        assert fit.reason
