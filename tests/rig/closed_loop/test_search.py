"""Closed-loop search on a synthetic recruitment surface with a known optimum."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rig.closed_loop import (
    BayesianSearch,
    GridSearch,
    Objective,
    ParameterSpace,
    RandomSearch,
    replay,
)

SPACE = ParameterSpace()


def response(point, rheobase_v=1.2, chronaxie_s=1.5e-3, slope_v=0.35):
    """Mean response: sigmoid recruitment against a strength–duration threshold."""
    amplitude, duration, _ = point
    threshold = rheobase_v * (1 + chronaxie_s / duration) * 2  # Vpp
    return 1.0 / (1.0 + np.exp(-(amplitude - threshold) / slope_v))


def efficiency(point):
    return Objective(per_charge=True).score(response(point), point)


def best_on_fine_grid(score):
    return max(score(p) for p in SPACE.grid(81, 81))


def run(search, score, n, rng):
    history = []
    for _ in range(n):
        point = search.propose()
        noisy = score(point) * (1 + 0.05 * rng.standard_normal())
        search.observe(point, noisy)
        history.append(score(point))
    return history


@pytest.mark.parametrize(
    "make",
    [
        lambda s: GridSearch(SPACE, seed=s),
        lambda s: RandomSearch(SPACE, seed=s),
        lambda s: BayesianSearch(SPACE, seed=s),
        lambda s: BayesianSearch(SPACE, seed=s, safe_radius=0.15),
    ],
)
def test_no_strategy_ever_proposes_outside_the_space(make):
    rng = np.random.default_rng(0)
    for seed in range(3):
        search = make(seed)
        for _ in range(25):
            point = search.propose()
            a, d, pair = point
            assert 2.0 - 1e-9 <= a <= 6.0 + 1e-9
            assert 2e-3 - 1e-12 <= d <= 6.7e-3 + 1e-12
            assert pair == 0
            search.observe(point, efficiency(point) + 0.01 * rng.standard_normal())


def test_safe_set_starts_gentlest_and_expands_only_near_safe_points():
    search = BayesianSearch(SPACE, safe_radius=0.1)
    first = search.propose()
    assert first == (2.0, 2e-3, 0)
    search.observe(first, efficiency(first))
    tested = [first]
    for _ in range(15):
        point = search.propose()
        u, v = SPACE.to_unit(point[0], point[1])
        nearest = min(
            np.hypot(u - SPACE.to_unit(a, d)[0], v - SPACE.to_unit(a, d)[1])
            for a, d, _ in tested
        )
        assert nearest <= 0.1 + 1e-9
        search.observe(point, efficiency(point))
        tested.append(point)


def test_bayesian_reaches_95_percent_of_best_within_a_quarter_of_the_grid():
    grid_size = len(GridSearch(SPACE).points)  # 72 stimuli for the full sweep
    budget = grid_size // 4
    best = best_on_fine_grid(efficiency)
    reached = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        history = run(BayesianSearch(SPACE, seed=seed), efficiency, budget, rng)
        hits = [i for i, v in enumerate(history) if v >= 0.95 * best]
        reached.append(hits[0] + 1 if hits else np.inf)
    assert np.median(reached) <= budget


def test_replay_reproduces_the_live_decisions():
    rng = np.random.default_rng(4)
    live = BayesianSearch(SPACE, seed=1)
    run(live, efficiency, 8, rng)
    obs = live.observations
    decisions = replay(BayesianSearch(SPACE, seed=1), obs.points, obs.scores)
    assert [d.point for d in decisions] == obs.points


def test_state_is_json_and_holds_the_posterior():
    search = BayesianSearch(SPACE, resolution=11)
    run(search, efficiency, 6, np.random.default_rng(0))
    state = json.loads(json.dumps(search.state()))
    assert len(state["observations"]["points"]) == 6
    assert np.array(state["posterior"]["mean"]).shape == (11, 11)
    assert "UCB" in state["decision"]["reason"]


def test_objective_validation_and_target_scoring():
    with pytest.raises(ValueError, match="'minimise' is not one of"):
        Objective(kind="minimise")
    with pytest.raises(ValueError, match="needs a numeric target"):
        Objective(kind="target")
    target = Objective(kind="target", target=0.5)
    assert target.score(0.7, (3.0, 3e-3, 0)) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="amplitude_vpp bounds"):
        ParameterSpace(amplitude_vpp=(6.0, 2.0))
