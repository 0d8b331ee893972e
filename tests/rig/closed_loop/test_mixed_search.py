"""Closed-loop search over mixed spaces (sites, trains, polarity) on synthetic
site-dependent responses with known optima."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.closed_loop import GridSearch, RandomSearch, replay
from rig.closed_loop.mixed_search import (
    MixedBayesianSearch,
    hypervolume_improvement,
    pareto_mask,
)
from rig.closed_loop.space import Configuration, MixedSpace, SitePoint

POSITIONS_M = tuple(float(x) for x in np.linspace(0.01, 0.12, 8))
CONFIGS = (
    [f"C{i}-R" for i in range(8)]
    + [f"C{i}-A{i + 1}" for i in range(7)]
    + [f"C{i + 1}-A{i}" for i in range(7)]
    + [f"C{i}-A{i + 2}" for i in range(6)]
)
SPACE = MixedSpace(configurations=tuple(CONFIGS), electrode_positions_m=POSITIONS_M)
TRAINS = MixedSpace(
    configurations=("C0-R", "C3-R", "C3-A4", "C7-R"),
    electrode_positions_m=POSITIONS_M,
    n_pulses=(1, 2, 4),
    rate_hz=(20.0, 50.0),
    polarities=(0, 1),
)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """As the neurorig CLI runs (a shared machine's BLAS threads only contend
    on these small matrices)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def threshold(space, point, fibre):
    """A strength–duration threshold that depends on the site: the 'mgf'
    lowest anteriorly, the 'lgf' posteriorly (as the simulated worm)."""
    site = space.site_m(point[0])
    prefer = 0.01 if fibre == "mgf" else 0.12
    base = 3.0 if fibre == "mgf" else 3.4
    return base * (1 + 0.3e-3 / point[2]) * (1 + 60 * (site - prefer) ** 2)


def fires(space, point, fibre, slope=0.15):
    return 1 / (1 + math.exp(-(point[1] - threshold(space, point, fibre)) / slope))


def response(space, point):
    """Response amplitude: the MGF's recruitment, largest at 40 mm."""
    site = space.site_m(point[0])
    return fires(space, point, "mgf") * math.exp(-(((site - 0.04) / 0.04) ** 2))


def run(search, score, n, seed, noise=0.03):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        point = search.propose()
        search.prepare()
        search.observe(point, score(point) + noise * rng.standard_normal())
    return search


def test_configurations_parse_and_refuse_in_one_line():
    assert Configuration.parse(" C12-A3 ") == Configuration(12, 3)
    assert str(Configuration.parse("C0-R")) == "C0-R"
    for bad in ("C3", "A3-C4", "C3-A", "C3-R4", "C3-A3"):
        with pytest.raises(ValueError, match=f"configuration '{bad}'"):
            Configuration.parse(bad)
    with pytest.raises(ValueError, match="names an electrode beyond the 8"):
        MixedSpace(configurations=("C8-R",), electrode_positions_m=POSITIONS_M)
    with pytest.raises(ValueError, match="strictly ascending"):
        MixedSpace(configurations=("C0-R",), electrode_positions_m=(0.02, 0.01))
    with pytest.raises(ValueError, match="n_pulses must list ascending"):
        MixedSpace(configurations=("C0-R",), n_pulses=(2, 1))


def test_a_space_of_over_a_thousand_grid_points():
    assert len(SPACE.grid(6, 6)) == 28 * 36 == 1008
    assert len(TRAINS.grid(3, 3)) == 4 * 9 * 3 * 2 * 2


MAKERS = [
    lambda space, s: GridSearch(space, 6, 6, seed=s),
    lambda space, s: RandomSearch(space, seed=s),
    lambda space, s: MixedBayesianSearch(space, seed=s, resolution=5),
    lambda space, s: MixedBayesianSearch(space, seed=s, resolution=5, safe_radius=0.3),
    lambda space, s: MixedBayesianSearch(space, resolution=5, minimise_charge=True),
    lambda space, s: MixedBayesianSearch(space, resolution=5, constraint_max=0.2),
]


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("space", [SPACE, TRAINS], ids=["sites", "trains"])
def test_no_strategy_ever_proposes_outside_the_space(make, space):
    rng = np.random.default_rng(0)
    search = make(space, 1)
    for _ in range(25):
        point = search.propose()
        assert space.contains(point), point
        a, d = point[1], point[2]
        assert 2.0 - 1e-9 <= a <= 6.0 + 1e-9 and 2e-3 - 1e-12 <= d <= 6.7e-3 + 1e-12
        search.observe(
            point,
            response(space, point) + 0.01 * rng.standard_normal(),
            constraint=fires(space, point, "mgf"),
        )


@settings(max_examples=15, deadline=None)
@given(
    cathodes=st.lists(st.integers(0, 7), min_size=1, max_size=5, unique=True),
    radius=st.floats(0.1, 0.6),
    seed=st.integers(0, 1000),
)
def test_safe_set_grows_per_configuration_from_its_gentlest_stimulus(
    cathodes, radius, seed
):
    space = MixedSpace(
        configurations=tuple(f"C{c}-R" for c in cathodes),
        electrode_positions_m=POSITIONS_M,
        n_pulses=(1, 3),
    )
    search = MixedBayesianSearch(space, safe_radius=radius, resolution=6, seed=seed)
    rng = np.random.default_rng(seed)
    tested: list[SitePoint] = []
    for k in range(12):
        point = search.propose()
        if k == 0:
            assert point == space.gentlest(space.configurations[0])
        same = [p for p in tested if p.configuration == point.configuration]
        unit = space.features([point])[0, :4]
        near = [np.linalg.norm(unit - space.features([p])[0, :4]) for p in same]
        assert (
            point == space.gentlest(point.configuration) or min(near) <= radius + 1e-9
        )
        search.observe(point, rng.random())
        tested.append(point)


def test_what_one_site_teaches_spreads_to_its_neighbours_not_far_sites():
    space = MixedSpace(
        configurations=tuple(f"C{i}-R" for i in range(8)),
        electrode_positions_m=POSITIONS_M,
    )
    search = MixedBayesianSearch(space, resolution=5)
    rng = np.random.default_rng(1)
    for config in space.configurations:  # a flat, silent background everywhere
        for _ in range(3):
            search.observe(space.random_point(rng)._replace(configuration=config), 0.0)
    for _ in range(6):  # then strong responses at site 3
        search.observe(space.random_point(rng)._replace(configuration="C3-R"), 1.0)
    search.observe(space.random_point(rng)._replace(configuration="C3-R"), 1.0)
    mean, _ = search.posterior_now()
    by_config = [mean[search._config == c].mean() for c in range(8)]
    assert by_config[3] > by_config[4] > by_config[7]
    assert by_config[3] > by_config[2] > by_config[0]
    assert search._fit("objective", 30).site_length_m < 0.1


def fraction_to_reach(make, score, best, budget, seed):
    search = make(seed)
    rng = np.random.default_rng(seed)
    for k in range(1, budget + 1):
        point = search.propose()
        search.prepare()
        search.observe(point, score(point) + 0.03 * rng.standard_normal())
        if k >= 3 and score(search.recommendation()) >= 0.95 * best:
            return k
    return math.inf


def test_the_optimiser_finds_the_best_site_in_a_twentieth_of_the_grid():
    grid = SPACE.grid(6, 6)
    best = max(response(SPACE, p) for p in grid)
    needed = [
        fraction_to_reach(
            lambda s: MixedBayesianSearch(SPACE, seed=s),
            lambda p: response(SPACE, p),
            best,
            len(grid) // 20,
            seed,
        )
        for seed in range(3)
    ]
    assert np.median(needed) <= len(grid) / 20, needed


def test_constrained_search_evokes_the_lgf_with_the_mgf_silent():
    """Maximise P(LGF) subject to P(MGF) ≤ 0.2: the recommendation fires the
    LGF alone (posterior sites), not both (the strongest pulses anywhere)."""

    def lgf(point):
        return float(fires(SPACE, point, "lgf") > 0.5)

    def mgf(point):
        return float(fires(SPACE, point, "mgf") > 0.5)

    found = 0
    for seed in range(2):
        search = MixedBayesianSearch(SPACE, constraint_max=0.2, seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(40):
            point = search.propose()
            search.prepare()
            noisy = rng.random() < 0.05  # a trial-to-trial miss now and then
            search.observe(point, lgf(point) * (not noisy), constraint=mgf(point))
        rec = search.recommendation()
        found += fires(SPACE, rec, "lgf") > 0.5 and fires(SPACE, rec, "mgf") < 0.5
        assert "EI × P(constraint ≤ 0.2)" in search.last_decision.reason
    assert found == 2


def test_pareto_search_reports_a_front_of_response_against_charge():
    search = run(
        MixedBayesianSearch(SPACE, minimise_charge=True, seed=2),
        lambda p: response(SPACE, p),
        40,
        seed=2,
    )
    front = search.pareto_front()
    charges = [f["charge_uc"] for f in front]
    responses = [f["response"] for f in front]
    assert charges == sorted(charges) and len(front) >= 2
    assert all(b > a for a, b in itertools.pairwise(responses))
    rec = search.recommendation()
    assert list(rec) in [f["point"] for f in front]
    state = json.loads(json.dumps(search.state()))
    assert state["pareto_front"] == front
    assert set(state["by_configuration"]) == set(SPACE.configurations)
    assert state["recommended_point"] == list(rec)


def hypervolume_reference(charge, response, fq, fr, r_ref, q_ref, n=400):
    """Brute force: dominated area on a fine grid, with and without the point."""
    qs = np.linspace(0, q_ref, n + 1)[:-1] + q_ref / n / 2
    rs = np.linspace(r_ref, 3.0, n + 1)[:-1] + (3.0 - r_ref) / n / 2
    qq, rr = np.meshgrid(qs, rs, indexing="ij")
    before = np.zeros_like(qq, dtype=bool)
    for q, r in zip(fq, fr, strict=True):
        before |= (qq >= q) & (rr <= r)
    after = before | ((qq >= charge) & (rr <= response))
    return (after.sum() - before.sum()) * (q_ref / n) * ((3.0 - r_ref) / n)


@settings(max_examples=25, deadline=None)
@given(
    front=st.lists(
        st.tuples(st.floats(0.05, 2.0), st.floats(0.0, 2.5)), min_size=0, max_size=5
    ),
    candidate=st.tuples(st.floats(0.05, 2.0), st.floats(0.0, 2.9)),
)
def test_hypervolume_improvement_matches_brute_force(front, candidate):
    fq = np.array([f[0] for f in front])
    fr = np.array([f[1] for f in front])
    keep = pareto_mask(fq, fr) if front else np.zeros(0, bool)
    q_ref = 2.0
    got = hypervolume_improvement(
        np.array([candidate[0], q_ref]), np.array([candidate[1], 0.0]),
        fq[keep], fr[keep], 0.0,
    )[0]  # fmt: skip
    want = hypervolume_reference(*candidate, fq[keep], fr[keep], 0.0, q_ref)
    assert got == pytest.approx(want, abs=0.03)


def test_replay_reproduces_the_mixed_decisions():
    live = run(MixedBayesianSearch(TRAINS, seed=3, resolution=5),
               lambda p: response(TRAINS, p), 14, seed=3)  # fmt: skip
    obs = live.observations
    decisions = replay(MixedBayesianSearch(TRAINS, seed=3, resolution=5),
                       obs.points, obs.scores)  # fmt: skip
    assert [d.point for d in decisions] == obs.points


def _all_or_none_observations():
    """LGF (objective) and MGF (constraint), 0 or 1: posterior sites fire the
    LGF above the middle amplitude, anterior ones the MGF first; at C4 one
    lucky LGF response among misses near threshold."""
    (a0, a1), (d0, d1) = SITES8.amplitude_vpp, SITES8.duration_s
    amps, durs = np.linspace(a0, a1, 11), np.linspace(d0, d1, 11)
    obs = [(SitePoint("C4-R", amps[i], durs[5]), fired, 0.0)
           for i, fired in ((3, 0.0), (4, 1.0), (5, 0.0), (6, 0.0))]  # fmt: skip
    for c in ("C5-R", "C6-R", "C7-R"):
        for i, j in itertools.product((2, 4, 6, 8, 10), (3, 7)):
            obs.append((SitePoint(c, amps[i], durs[j]), float(i >= 6), 0.0))
    for c in ("C0-R", "C1-R", "C2-R"):
        for i in (2, 6, 10):
            obs.append((SitePoint(c, amps[i], durs[5]), float(i == 10), float(i >= 6)))
    return obs


SITES8 = MixedSpace(configurations=tuple(f"C{i}-R" for i in range(8)),
                    electrode_positions_m=POSITIONS_M)  # fmt: skip


def test_an_all_or_none_measure_is_not_modelled_as_noiseless():
    """Fitted freely, the noise on 0/1 targets collapses to its bound and the
    lucky response at C4 looks as sure as the region that always fires; with
    the floor its posterior is pulled toward its silent neighbours and is less
    certain than a point in the reliable region."""
    from rig.closed_loop.mixed_search import BINARY_MIN_NOISE

    search = MixedBayesianSearch(SITES8, constraint_max=0.1, seed=0)
    for point, lgf, mgf in _all_or_none_observations():
        search.observe(point, lgf, constraint=mgf)
    n = len(search.observations.points)
    assert search._fit("objective", n).noise >= BINARY_MIN_NOISE * (1 - 1e-9)
    assert search._fit("constraint", n).noise >= BINARY_MIN_NOISE * (1 - 1e-9)
    mean, std = search._tested_posterior()
    reliable = [i for i, p in enumerate(search.observations.points)
                if p[0] == "C6-R" and p[1] >= 5.0]  # fmt: skip
    assert mean[1] < 0.9 < mean[reliable].min()  # the lucky one at C4
    assert std[1] > std[reliable].max()
    # a continuous measure keeps its freely fitted noise (smooth: small)
    smooth = MixedBayesianSearch(SITES8, seed=0)
    for point, _, _ in _all_or_none_observations():
        smooth.observe(point, response(SITES8, point))
    assert smooth._fit("objective", n).noise < BINARY_MIN_NOISE


def test_the_constrained_recommendation_is_the_highest_lower_bound_among_feasible():
    search = MixedBayesianSearch(SITES8, constraint_max=0.1, seed=0)
    for point, lgf, mgf in _all_or_none_observations():
        search.observe(point, lgf, constraint=mgf)
    mean, std = search._tested_posterior()
    c_mean = search._tested_means("constraint")
    lower = mean - search.beta * std
    feasible = c_mean <= 0.1
    rec = search.recommendation()
    i = search.observations.points.index(rec)
    assert feasible[i] and lower[i] == pytest.approx(lower[feasible].max())
    assert rec[0] in ("C5-R", "C6-R", "C7-R") and rec[1] >= 4.4  # fires the LGF
    assert lower[i] > lower[1]  # not the lucky response at C4


def test_prepare_computes_the_pending_stimulus_row_and_decides_the_same():
    """With the proposal on its way known, ``prepare`` computes its Cholesky
    row, so the decision does no O(n·m) work; the decisions equal a replay's
    (no ``prepare``), and an override observed instead is handled too."""
    from rig.closed_loop import _gp

    live = MixedBayesianSearch(TRAINS, seed=4, resolution=5)
    rng = np.random.default_rng(4)
    computed = []
    original = _gp.PreparedPosterior._compute_row

    def counting(self, x_new):
        computed.append(1)
        return original(self, x_new)

    for k in range(16):
        point = live.propose()
        live.prepare()
        if k == 12:  # the user overrides the proposal
            point = TRAINS.point("C3-A4", 4.0, 0.004, 2, 20.0, 1)
        live.observe(point, response(TRAINS, point) + 0.02 * rng.standard_normal())
        computed.clear()
        _gp.PreparedPosterior._compute_row = counting
        try:
            live.propose()
        finally:
            _gp.PreparedPosterior._compute_row = original
        if k >= 5:  # past the initial design
            assert len(computed) == (1 if k == 12 else 0), k
    obs = live.observations
    decisions = replay(MixedBayesianSearch(TRAINS, seed=4, resolution=5),
                       obs.points, obs.scores)  # fmt: skip
    expected = [d.point for d in decisions]
    assert expected[:12] == obs.points[:12]
    assert expected[13:] == obs.points[13:]


def test_a_graded_constrained_recommendation_is_the_gentlest_near_the_best_bound():
    """Graded objective (an LGF volley that grows above threshold, saturating):
    of the feasible points whose lower bound is within 5 % of the highest, the
    least charge per phase, not the strongest pulse at the MGF's edge."""
    search = MixedBayesianSearch(SITES8, constraint_max=0.1, seed=0)
    for point, lgf, mgf in _all_or_none_observations():
        volley_uv = lgf * 60 * (1 + 0.5 * math.tanh(3 * (point[1] - 3.5) / 3.5))
        search.observe(point, volley_uv, constraint=mgf)
    mean, std = search._tested_posterior()
    c_mean = search._tested_means("constraint")
    lower = np.where(c_mean <= 0.1, mean - search.beta * std, -np.inf)
    near = lower >= lower.max() - 0.05 * abs(lower.max())
    charge = np.array(
        [SITES8.charge_per_phase_uc(p) for p in search.observations.points]
    )
    rec = search.recommendation()
    i = search.observations.points.index(rec)
    assert near[i] and charge[i] == pytest.approx(charge[near].min())
    assert charge[i] < charge[int(np.argmax(lower))]  # gentler than the top bound
    assert rec[0] in ("C5-R", "C6-R", "C7-R")
