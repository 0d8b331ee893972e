"""The shipped designs on the simulated worm's physiology (habituation on): the
plan of each protocol file, as ``rig.protocols`` expands it, delivered to the
worm model's firing rule (no signals rendered: what fired is its ground
truth), then fitted. The model's truth is in firmware_bridge/sim/worm.py
(``WormParams``: rheobase 2.9 Vpp, chronaxie 0.06 ms, Weiss's law; threshold
+1 % per stimulus, recovering with τ = 30 s). The full path, signals and AP
detection included, runs on the simulated rig in
tests/analysis/test_fits_on_the_rig.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.fits import (
    fit_habituation,
    fit_recruitment,
    fit_strength_duration_trials,
)
from firmware_bridge.sim import WormModel, WormParams
from firmware_bridge.sim.worm import threshold_vpp
from rig.protocols import load_protocol

ROOT = Path(__file__).resolve().parents[2]
FS = 30_000
TRUTH = WormParams()


def deliver(name: str, seed: int):
    """The protocol's trials through the worm's firing rule."""
    plan = load_protocol(ROOT / "protocols" / f"{name}.toml").expand()
    model = WormModel(seed=seed, fs_hz=FS)
    a, d, t, fired = [], [], [], []
    for trial in plan.trials:
        p = trial.pulse
        out = model.stimulate(
            round((1.0 + trial.onset_s) * FS), p.amplitude_vpp, p.duration_s
        )
        a.append(p.amplitude_vpp)
        d.append(p.duration_s)
        t.append(trial.onset_s)
        fired.append(out.mgf_fired or out.lgf_fired)
    return np.array(a), np.array(d), np.array(t), np.array(fired)


@pytest.mark.slow
def test_the_strength_duration_protocol_gives_intervals_that_hold_the_truth():
    rheobase, chronaxie = TRUTH.mgf_rheobase_vpp, TRUTH.chronaxie_s
    held = {"rheobase": 0, "chronaxie": 0, "habituation": 0}
    seeds = range(20)
    for seed in seeds:
        a, d, t, fired = deliver("strength-duration", seed)
        fit = fit_strength_duration_trials(a, d, fired, onsets_s=t)
        lo, hi = fit.rheobase_ci95_vpp
        held["rheobase"] += lo <= rheobase <= hi
        clo, chi = fit.chronaxie_ci95_s
        held["chronaxie"] += clo <= chronaxie <= chi
        # 0.06 ms against pulses of 1–6.7 ms: never a determined chronaxie.
        assert not fit.chronaxie_determined
        hab = fit.habituation
        hab_lo, hab_hi = hab.per_stimulus_ci95
        held["habituation"] += hab_lo <= TRUTH.habituation_per_stimulus <= hab_hi
    for name, n in held.items():  # 95 % intervals: in at least 85 % of worms
        assert n >= 17, (name, n)


def test_ignoring_habituation_on_the_old_pace_misses_the_rheobase():
    # The same trials, fitted as if every stimulus met a rested worm: the
    # rheobase comes out high (the threshold had risen ~5 %).
    a, d, t, fired = deliver("strength-duration", 0)
    naive = fit_strength_duration_trials(a, d, fired)
    modelled = fit_strength_duration_trials(a, d, fired, onsets_s=t)
    assert naive.rheobase_vpp > modelled.rheobase_vpp
    assert modelled.rheobase_ci95_vpp[0] <= 2.9 <= modelled.rheobase_ci95_vpp[1]


@pytest.mark.slow
def test_the_recruitment_protocol_finds_the_rested_threshold_and_the_habituation():
    rested = threshold_vpp(TRUTH, 3e-3)
    held = {"rested": 0, "habituation": 0, "curve": 0}
    for seed in range(20):
        a, d, t, fired = deliver("recruitment", seed)
        fit = fit_recruitment(a, fired, duration_s=3e-3)
        assert fit.determined  # 0.1 V steps: the responses never separate
        # Measured across the session, the curve's threshold is the rested one
        # raised by habituation (load ≤ 6.3 in this plan, 1 % each).
        lo, hi = fit.threshold_ci95_vpp
        held["curve"] += lo <= rested * 1.063 and hi >= rested
        hab = fit_habituation(a, fired, t, d)
        (at_rest,) = hab.rested_thresholds
        held["rested"] += at_rest.ci95_vpp[0] <= rested <= at_rest.ci95_vpp[1]
        lo, hi = hab.per_stimulus_ci95
        held["habituation"] += lo <= TRUTH.habituation_per_stimulus <= hi
    for name, n in held.items():
        assert n >= 17, (name, n)
