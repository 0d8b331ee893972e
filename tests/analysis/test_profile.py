"""The fits call TNC's core directly (``analysis._profile._tnc``): every
result must be the one ``scipy.optimize.minimize(method="TNC")`` gives, bit
for bit, profiles and intervals included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import analysis._profile as profile
from analysis import fits


def _trials(seed: int):
    # three durations, a habituating worm (threshold rising with the load)
    rng = np.random.default_rng(seed)
    n = 90
    d = rng.choice([2e-3, 3.3e-3, 5e-3], n)
    onsets = np.cumsum(rng.uniform(1.0, 8.0, n))
    load = fits.habituation_load(onsets)
    v = rng.uniform(1.5, 5.0, n)
    threshold = 2.0 * (1 + 0.4e-3 / d) * (1 + 0.02 * load)
    y = rng.random(n) < expit((np.log(v) - np.log(threshold)) / 0.1)
    return v, d, y, onsets, load


def _every_fit(seed: int) -> list[dict]:
    v, d, y, onsets, load = _trials(seed)
    first = d == d.min()
    ms = np.array([0.02, 0.05, 0.1, 0.3, 1.0])  # durations for thresholds
    return [
        fits.fit_recruitment(v[first], y[first]).to_dict(),
        fits.fit_recruitment(v[first], y[first], link="probit").to_dict(),
        fits.fit_habituation(v, y, onsets, d, load=load).to_dict(),
        *(
            fits.fit_strength_duration_trials(v, d, y, load=load, model=m).to_dict()
            for m in fits.SD_MODELS
        ),
        fits.fit_strength_duration(
            ms * 1e-3, 2.9 * (1 + 0.06 / ms) * np.array([1.01, 0.99, 1, 1.01, 0.99])
        ).to_dict(),
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_direct_tnc_equals_minimize_bit_for_bit(seed, monkeypatch):
    direct = _every_fit(seed)
    monkeypatch.setattr(profile, "tnc_minimize", None)  # optimize.minimize
    assert direct == _every_fit(seed)  # floats compared exactly
    # the fits went past their estimates: intervals were profiled
    assert any(f.get("determined") for f in direct)


def test_direct_tnc_optimum_and_value_equal_minimize():
    # a bumpy objective, a box the optimum presses against, a start outside
    def objective(p):
        value = float(np.sum((p - [0.3, -2.0, 5.0]) ** 2) + np.sin(3 * p[0]))
        grad = 2 * (p - [0.3, -2.0, 5.0])
        grad[0] += 3 * np.cos(3 * p[0])
        return value, grad

    bounds = [(-1.0, 2.0), (-1.5, 1.0), (0.0, 10.0)]
    got = profile.ProfileFit(objective, bounds, np.array([1.9, 0.9, -3.0]))
    profile_at = got.profile(0, 1.2, got.best.p)
    saved, profile.tnc_minimize = profile.tnc_minimize, None
    try:
        want = profile.ProfileFit(objective, bounds, np.array([1.9, 0.9, -3.0]))
        want_at = want.profile(0, 1.2, want.best.p)
    finally:
        profile.tnc_minimize = saved
    np.testing.assert_array_equal(got.best.p, want.best.p)
    assert got.best.value == want.best.value
    np.testing.assert_array_equal(profile_at.p, want_at.p)
    assert profile_at.value == want_at.value
