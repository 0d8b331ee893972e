"""Fits with honest uncertainty: how often each 95 % interval holds the truth.

Datasets are drawn here by plain numpy (no code shared with ``analysis.fits``):

- ``recruitment_*_coverage``: 54 stimuli (9 amplitudes 2–4 Vpp × 6), responses
  drawn from a logistic with threshold 3 Vpp and slope 0.25 Vpp; fraction of
  determined fits whose interval holds the threshold (slope); and
  ``recruitment_separated_fraction``, how many datasets separate (reported as
  "threshold between A and B Vpp").
- ``sd_{weiss,lapicque}_*_coverage``: thresholds at 0.1–5 ms from each law
  (rheobase 2.9 Vpp, chronaxie 0.5 ms) with 4 % log-normal scatter.
- ``worm_sd_*_coverage``: the shipped ``protocols/strength-duration.toml``
  through the simulated worm's firing rule (``WormModel.stimulate``,
  habituation on; truth 2.9 Vpp, 0.06 ms, 1 %/stimulus), fitted by
  ``fit_strength_duration_trials``; ``worm_sd_rheobase_ci_width_vpp`` the
  median interval width; ``worm_sd_naive_rheobase_bias`` the median relative
  error of the same fit ignoring habituation.

200 datasets each (worm: 40); quick: 40 (worm: 10).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis.fits import (
    fit_recruitment,
    fit_strength_duration,
    fit_strength_duration_trials,
)
from firmware_bridge.sim import WormModel, WormParams
from rig.protocols import load_protocol

ROOT = Path(__file__).resolve().parents[1]


def _covers(ci, truth) -> bool:
    return ci is not None and ci[0] <= truth <= ci[1]


def _recruitment(n: int) -> dict[str, float]:
    levels = np.repeat(np.linspace(2.0, 4.0, 9), 6)
    hits_t = hits_s = fitted = separated = 0
    for seed in range(n):
        rng = np.random.default_rng(seed)
        p = 1.0 / (1.0 + np.exp(-(levels - 3.0) / 0.25))
        fit = fit_recruitment(levels, rng.random(levels.size) < p)
        separated += fit.separation is not None
        if fit.determined:
            fitted += 1
            hits_t += _covers(fit.threshold_ci95_vpp, 3.0)
            hits_s += _covers(fit.slope_ci95_vpp, 0.25)
    return {
        "recruitment_threshold_coverage": hits_t / fitted,
        "recruitment_slope_coverage": hits_s / fitted,
        "recruitment_separated_fraction": separated / n,
    }


def _strength_duration(n: int) -> dict[str, float]:
    d = np.array([0.1, 0.2, 0.5, 1.0, 2.0, 5.0]) * 1e-3
    laws = {
        "weiss": lambda d: 2.9 * (1 + 0.5e-3 / d),
        "lapicque": lambda d: 2.9 / (1 - np.exp(-d * math.log(2) / 0.5e-3)),
    }
    out = {}
    for model, law in laws.items():
        r = c = 0
        for seed in range(n):
            rng = np.random.default_rng(seed)
            t = law(d) * np.exp(rng.normal(0, 0.04, d.size))
            fit = fit_strength_duration(d, t, model=model)
            r += _covers(fit.rheobase_ci95_vpp, 2.9)
            c += _covers(fit.chronaxie_ci95_s, 0.5e-3)
        out[f"sd_{model}_rheobase_coverage"] = r / n
        out[f"sd_{model}_chronaxie_coverage"] = c / n
    return out


def _worm(n: int) -> dict[str, float]:
    plan = load_protocol(ROOT / "protocols" / "strength-duration.toml").expand()
    truth = WormParams()
    held = {"rheobase": 0, "chronaxie": 0, "habituation": 0}
    widths, naive = [], []
    for seed in range(n):
        model = WormModel(seed=seed)
        a, d, t, y = [], [], [], []
        for trial in plan.trials:
            p = trial.pulse
            out = model.stimulate(
                round((1 + trial.onset_s) * model.fs_hz), p.amplitude_vpp, p.duration_s
            )
            a.append(p.amplitude_vpp)
            d.append(p.duration_s)
            t.append(trial.onset_s)
            y.append(out.mgf_fired or out.lgf_fired)
        fit = fit_strength_duration_trials(a, d, y, onsets_s=t)
        held["rheobase"] += _covers(fit.rheobase_ci95_vpp, truth.mgf_rheobase_vpp)
        held["chronaxie"] += _covers(fit.chronaxie_ci95_s, truth.chronaxie_s)
        hab = fit.habituation
        held["habituation"] += hab is not None and _covers(
            hab.per_stimulus_ci95, truth.habituation_per_stimulus
        )
        lo, hi = fit.rheobase_ci95_vpp or (math.nan, math.nan)
        widths.append(hi - lo)
        plain = fit_strength_duration_trials(a, d, y)
        naive.append(plain.rheobase_vpp / truth.mgf_rheobase_vpp - 1)
    return {
        **{f"worm_sd_{k}_coverage": v / n for k, v in held.items()},
        "worm_sd_rheobase_ci_width_vpp": float(np.nanmedian(widths)),
        "worm_sd_naive_rheobase_bias": float(np.nanmedian(naive)),
    }


def run(quick: bool = False) -> dict[str, float]:
    """Coverage figures (fractions of datasets)."""
    n = 40 if quick else 200
    figures = {**_recruitment(n), **_strength_duration(n), **_worm(n // 5)}
    for name, value in figures.items():
        print(f"  {name}: {value:.3f}")
    return figures
