"""Propagation both ways from a stimulation site (issue 18 item 3), checked on an
independent generator (tests/analysis/_bidir_generator.py, not the simulator)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.bidirectional import (
    ANTERIOR,
    POSTERIOR,
    analyse_bidirectional,
    configuration_key,
    fibre_selectivity,
    fit_bidirectional,
    proportion_ci95,
    separated_latencies,
    site_map,
    twitch_selectivity,
)
from tests.analysis._bidir_generator import (
    STANDARD_PAIRS_M,
    Fibre,
    Scene,
    latencies,
    render,
)

X4 = np.array(STANDARD_PAIRS_M)
X8 = np.linspace(0.015, 0.120, 8)

# --- the V fit on latencies --------------------------------------------------


@pytest.mark.parametrize("site_mm", [47.5, 60.0, 67.5, 77.5, 90.0])
@pytest.mark.parametrize("known", [False, True])
def test_exact_latencies_give_the_site_and_speed(site_mm, known):
    site = site_mm * 1e-3
    t = latencies(X8, site, 22.0, t0_s=0.7e-3)
    fit = fit_bidirectional(X8, t, site_m=site if known else None)
    assert fit.determined and fit.site_determined, fit.describe()
    assert fit.velocity_m_per_s == pytest.approx(22.0, rel=1e-6)
    assert fit.site_m == pytest.approx(site, abs=1e-6)
    assert fit.t0_s == pytest.approx(0.7e-3, abs=1e-9)
    assert fit.direction == "both"
    assert fit.anterior.signed_velocity_m_per_s == pytest.approx(-22.0, rel=1e-6)
    assert fit.posterior.signed_velocity_m_per_s == pytest.approx(22.0, rel=1e-6)
    assert np.isnan(fit.signed_velocity_m_per_s)  # both ways: see the sides
    lo, hi = fit.site_ci95_m
    assert lo <= site <= hi and hi - lo < 2e-3


@pytest.mark.parametrize(
    ("site", "direction", "end"), [(0.0, POSTERIOR, "head"), (0.14, ANTERIOR, "tail")]
)
def test_a_site_beyond_the_array_gives_one_way_and_a_bound(site, direction, end):
    fit = fit_bidirectional(X4, latencies(X4, site, 30.0))
    assert fit.determined and not fit.site_determined
    assert np.isnan(fit.site_m)
    assert f"{end}-end pair" in fit.site_reason
    assert fit.direction == direction
    sign = 1.0 if direction == POSTERIOR else -1.0
    assert fit.signed_velocity_m_per_s == pytest.approx(sign * 30.0, rel=1e-6)
    lo, hi = fit.site_ci95_m
    assert (lo == -np.inf and hi >= X4[0]) if end == "head" else (hi == np.inf)
    # The known cathode beyond the array measures from it, one side only.
    known = fit_bidirectional(X4, latencies(X4, site, 30.0), site_m=site)
    assert known.determined and known.velocity_m_per_s == pytest.approx(30.0, 1e-6)
    side = known.posterior if direction == POSTERIOR else known.anterior
    other = known.anterior if direction == POSTERIOR else known.posterior
    assert side.determined and side.n_pairs == 4 and other.n_pairs == 0
    assert not other.determined and "no detected pair" in other.reason


def test_mirrored_array_mirrors_the_site_and_swaps_the_sides():
    rng = np.random.default_rng(3)
    t = latencies(X8, 0.05, 18.0, jitter_s=10e-6, rng=rng)
    a = fit_bidirectional(X8, t)
    b = fit_bidirectional(0.2 - X8, t)
    assert a.site_m == pytest.approx(0.2 - b.site_m, abs=1e-9)
    assert a.velocity_m_per_s == pytest.approx(b.velocity_m_per_s, rel=1e-9)
    assert a.anterior.velocity_m_per_s == pytest.approx(
        b.posterior.velocity_m_per_s, rel=1e-9
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(4, 10),
    spacing_mm=st.floats(8.0, 25.0),
    site_frac=st.floats(-0.3, 1.3),
    velocity=st.floats(6.0, 45.0),
    t0_ms=st.floats(0.0, 2.0),
    jitter_us=st.floats(0.0, 20.0),
    missing=st.sets(st.integers(0, 9), max_size=3),
    shuffle=st.integers(0, 2**31 - 1),
    known=st.booleans(),
)
def test_noisy_latencies_any_array(
    n, spacing_mm, site_frac, velocity, t0_ms, jitter_us, missing, shuffle, known
):
    """Whatever the array, site, speed, jitter, missing pairs and order: a
    determined speed is within 5 of its SEs (+0.5 %) of the truth and a
    determined site within 5 half-intervals; too few pairs is never a number."""
    rng = np.random.default_rng(shuffle)
    x = 0.02 + spacing_mm * 1e-3 * np.arange(n)
    site = x[0] + site_frac * (x[-1] - x[0])
    t = latencies(
        x, site, velocity, t0_s=t0_ms * 1e-3, jitter_s=jitter_us * 1e-6,
        missing=[m for m in missing if m < n], rng=rng,
    )  # fmt: skip
    order = rng.permutation(n)
    fit = fit_bidirectional(x[order], t[order], site_m=site if known else None)
    detected = int(np.isfinite(t).sum())
    if detected < 3:
        assert not fit.determined and np.isnan(fit.velocity_m_per_s)
        return
    if fit.determined:
        err = abs(fit.velocity_m_per_s - velocity)
        assert err <= 5 * fit.velocity_se_m_per_s + 0.005 * velocity, fit.describe()
        lo, hi = fit.velocity_ci95_m_per_s
        assert lo <= fit.velocity_m_per_s <= hi
        for side in (fit.anterior, fit.posterior):
            if side.determined:
                e = abs(side.velocity_m_per_s - velocity)
                assert e <= 5 * side.velocity_se_m_per_s + 0.005 * velocity
            else:
                assert np.isnan(side.velocity_m_per_s) and side.reason
    else:
        assert fit.reason and np.isnan(fit.velocity_m_per_s)
    if fit.site_determined:
        lo, hi = fit.site_ci95_m
        half = max((hi - lo) / 2, 1e-4)
        assert abs(fit.site_m - site) <= 5 * half, fit.describe()
        # bracketed: a detected pair on either side of the estimate
        xs = x[np.isfinite(t)]
        assert xs.min() < fit.site_m < xs.max()
    # With no jitter and both sides held by ≥ 2 pairs, always determined.
    xs = x[np.isfinite(t)]
    if jitter_us == 0 and (xs < site).sum() >= 2 and (xs > site).sum() >= 2:
        assert fit.determined and fit.site_determined
        assert fit.velocity_m_per_s == pytest.approx(velocity, rel=1e-6)


def test_the_intervals_cover_the_truth_about_95_percent():
    """Coverage on 400 seeded datasets (8 pairs, 15 µs jitter, site between)."""
    rng = np.random.default_rng(11)
    hits_v = hits_s = n = 0
    for _ in range(400):
        site = rng.uniform(0.04, 0.10)
        v = rng.uniform(10, 35)
        t = latencies(X8, site, v, jitter_s=15e-6, rng=rng)
        fit = fit_bidirectional(X8, t, timing_sd_s=15e-6)
        assert fit.determined and fit.site_determined
        n += 1
        lo, hi = fit.velocity_ci95_m_per_s
        hits_v += lo <= v <= hi
        lo, hi = fit.site_ci95_m
        hits_s += lo <= site <= hi
    assert 0.90 <= hits_v / n <= 0.99
    assert 0.90 <= hits_s / n <= 0.99


@pytest.mark.parametrize(
    ("lat", "reason"),
    [
        ([1e-3, np.nan, None, 2e-3], "2 detected pair(s) (needs 3)"),
        ([1e-3, 1e-3, 1e-3, 1e-3], "do not rise"),
        ([1e-3, 3e-3, 1e-3, 3e-3], "off the V"),  # a W, not a V
        ([1.5e-3, 1.0e-3, np.nan, 1.5e-3], "nothing to test the V with"),  # dof 0
        ([1e-3, 1.2e-3, 1.4e-3, 1.6e-3], "outside"),  # 100 m/s
        ([1e-3, 11e-3, 21e-3, 31e-3], "outside"),  # 2 m/s
    ],
)
def test_degenerate_latencies_are_not_determined(lat, reason):
    fit = fit_bidirectional(X4, lat)
    assert not fit.determined and reason in fit.reason
    assert np.isnan(fit.velocity_m_per_s) and np.isnan(fit.site_m)
    assert fit.describe().startswith("propagation not determined")
    d = fit.to_dict()
    assert d["velocity_m_per_s"] is None and d["reason"]


def test_one_pair_on_a_side_leaves_that_side_undetermined():
    x = np.array([0.030, 0.050, 0.070, 0.090, 0.110])
    fit = fit_bidirectional(x, latencies(x, 0.04, 25.0))
    assert fit.determined and fit.velocity_m_per_s == pytest.approx(25.0, rel=1e-6)
    # One pair on the short arm: the site would rest on equal speeds both ways.
    assert not fit.site_determined and np.isnan(fit.site_m)
    assert "1 detected pair(s) on the anterior side of the apex" in fit.site_reason
    lo, hi = fit.site_ci95_m
    assert lo <= 0.04 <= hi
    assert not fit.anterior.determined and fit.anterior.n_pairs == 1
    assert "1 detected pair(s) on the anterior side" in fit.anterior.reason
    assert fit.posterior.determined and fit.posterior.n_pairs == 4


def test_a_side_whose_latencies_fall_with_distance_is_not_determined():
    x = np.array([0.010, 0.030, 0.050, 0.070, 0.090, 0.110])
    t = latencies(x, 0.06, 25.0)
    t[0] = t[1] - 0.2e-3  # the farthest anterior pair earlier than its neighbour
    fit = fit_bidirectional(x, t, site_m=0.06, max_residual_s=1e-3)
    assert not fit.anterior.determined
    assert "fall with distance" in fit.anterior.reason
    assert fit.posterior.determined


def test_one_outlying_pair_is_left_out():
    rng = np.random.default_rng(5)
    t = latencies(X8, 0.063, 28.0, jitter_s=5e-6, rng=rng)
    t[2] += 0.8e-3  # timed on the other fibre's spike
    fit = fit_bidirectional(X8, t)
    assert fit.determined and list(np.flatnonzero(fit.excluded)) == [2]
    assert fit.velocity_m_per_s == pytest.approx(28.0, rel=0.02)
    assert fit.site_m == pytest.approx(0.063, abs=1e-3)
    assert fit.to_dict()["pairs_excluded"] == [2]
    # Not with 4 pairs: three cannot outvote one.
    assert not fit_bidirectional(X8, t, exclude_outlier=False).determined


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"positions_m": [0.0, 0.1], "latencies_s": [1e-3]}, "one value per pair"),
        ({"positions_m": ["a", "b"], "latencies_s": [1, 2]}, "positions_m"),
        ({"positions_m": [0.0, np.nan], "latencies_s": [1, 2]}, "positions_m"),
        ({"positions_m": [0.0, 0.1], "latencies_s": ["x", 2]}, "latencies_s"),
        (
            {"positions_m": [0.0, 0.1], "latencies_s": [1, 2], "site_m": np.nan},
            "site_m",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field) as err:
        fit_bidirectional(**kwargs)
    assert "\n" not in str(err.value)


def test_to_dict_is_json_ready():
    import json

    fit = fit_bidirectional(X4, latencies(X4, 0.0, 30.0))
    text = json.dumps(fit.to_dict(), allow_nan=False)
    d = json.loads(text)
    assert d["site_ci95_m"][0] is None and d["direction"] == POSTERIOR
    assert d["signed_velocity_m_per_s"] == pytest.approx(30.0)


# --- from epochs: the generator's waveforms ----------------------------------

TOL = 0.03  # the issue's ±3 % of the model's velocity


def _run(scene: Scene, known: bool):
    ep = render(scene)
    return analyse_bidirectional(
        ep, fs_hz=scene.fs_hz, onset=scene.onset, duration_s=scene.pulse_s,
        pair_positions_m=np.array(scene.pairs_m),
        site_m=scene.site_m if known else None,
    )  # fmt: skip


@pytest.mark.parametrize("site", [0.0, 0.0675, 0.12])  # head, middle, tail
def test_one_fibre_from_head_middle_and_tail_within_3_percent(site):
    """Known cathode; reversed channels on odd seeds; hum, noise, artifact."""
    errors = []
    for seed in range(4):
        scene = Scene(
            site_m=site, seed=seed, reversed_channels=(1, 3) if seed % 2 else ()
        )
        r = _run(scene, known=True)
        assert r.response.volleys and r.fits[0].determined, r.fits
        fit, volley = r.fits[0], r.response.volleys[0]
        errors.append(fit.velocity_m_per_s / 30.0 - 1)
        if volley.clean:
            assert abs(errors[-1]) <= TOL
        expected = {0.0: POSTERIOR, 0.0675: "both", 0.12: ANTERIOR}[site]
        assert fit.direction == expected
    assert abs(np.median(errors)) <= 0.01


def _precise(fit) -> bool:
    """A determined speed whose 95 % interval is within ±5 %."""
    lo, hi = fit.velocity_ci95_m_per_s
    return fit.determined and (hi - lo) / 2 <= 0.05 * fit.velocity_m_per_s


@pytest.mark.parametrize("site", [0.0, 0.12])
def test_two_fibres_each_within_3_percent_when_clean_and_precise(site):
    """MGF 30 m/s and LGF 15 m/s from the head or the tail. A clean volley
    with a precise speed is within 3 %; a clean one that is not precise (an
    arrival timed on the pulse's edge) holds the truth in its interval."""
    hits = {"mgf": 0, "lgf": 0}
    for seed in range(4):
        scene = Scene(site_m=site, fibres=(Fibre(30.0), Fibre(15.0, 90.0)), seed=seed)
        r = _run(scene, known=True)
        for volley, fit in zip(r.response.volleys, r.fits, strict=True):
            truth = 30.0 if volley.fibre == "mgf" else 15.0
            if not (fit.determined and volley.clean):
                continue
            lo, hi = fit.velocity_ci95_m_per_s
            assert lo <= truth <= hi
            if _precise(fit):
                assert fit.velocity_m_per_s == pytest.approx(truth, rel=TOL)
                hits[volley.fibre] += 1
    # From the tail the nearest pair is 22.5 mm away: the MGF reaches it
    # 1.35 ms into the 2 ms pulse, and its speed is seldom precise.
    assert hits["lgf"] >= 3 and hits["mgf"] >= (3 if site == 0.0 else 0), hits


def test_fibres_merged_near_the_site_are_not_timed():
    """Site between two pairs 10 mm away: the MGF and LGF spikes there arrive
    0.33 ms apart and merge; those pairs time neither fibre, and what is left
    (two pairs at one distance) does not give a velocity."""
    scene = Scene(site_m=0.0475, fibres=(Fibre(30.0), Fibre(15.0, 90.0)), seed=1)
    r = _run(scene, known=True)
    # The farthest pair is 50 mm away: separable there (≥ 36 mm) ...
    assert r.fibres_separable and r.to_dict()["fibres_separable"] is True
    # ... but not from the middle of the four standard pairs (≤ 30 mm).
    middle = Scene(site_m=0.0675, fibres=(Fibre(30.0), Fibre(15.0, 90.0)), seed=1)
    assert not _run(middle, known=True).fibres_separable
    lat = separated_latencies(r.response)
    if len(r.response.volleys) == 2:
        both = np.isfinite(r.response.volleys[0].latency_s) & np.isfinite(
            r.response.volleys[1].latency_s
        )
        close = both & (
            np.abs(r.response.volleys[0].latency_s - r.response.volleys[1].latency_s)
            < 1.2e-3
        )
        assert close.any() and not np.isfinite(lat[0][close]).any()
    for volley, fit in zip(r.response.volleys, r.fits, strict=True):
        truth = 30.0 if volley.fibre == "mgf" else 15.0
        if fit.determined and volley.clean:
            assert fit.velocity_m_per_s == pytest.approx(truth, rel=TOL)


def test_a_missing_channel_leaves_the_others():
    scene = Scene(site_m=0.0, seed=2, missing_channels=(2,), pairs_m=tuple(X8[1:]))
    r = _run(scene, known=True)
    volley, fit = r.response.volleys[0], r.fits[0]
    assert np.isnan(volley.latency_s[2]) and not fit.used[2]
    assert fit.velocity_m_per_s == pytest.approx(30.0, rel=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unknown_site_found_from_the_epoch(seed):
    scene = Scene(site_m=0.0675, seed=seed, reversed_channels=(0,))
    r = _run(scene, known=False)
    fit = r.fits[0]
    assert fit.site_determined, fit.describe()
    assert fit.site_m == pytest.approx(0.0675, abs=1.5e-3)
    assert fit.velocity_m_per_s == pytest.approx(30.0, rel=TOL)
    assert r.to_dict()["bidirectional"][0]["site_m"] == pytest.approx(fit.site_m)


# --- selectivity and maps ------------------------------------------------------


def test_lgf_without_mgf_counts_and_exact_interval():
    configs = ["C6-R"] * 10 + ["C0-A1"] * 5
    mgf = [0] * 7 + [1] * 3 + [1] * 5
    lgf = [1] * 6 + [0] + [1] * 3 + [0] * 5
    a, b = fibre_selectivity(configs, mgf, lgf)
    assert (a.configuration, b.configuration) == ("C0-A1", "C6-R")  # by cathode
    assert (a.n, a.lgf_without_mgf, a.mgf_without_lgf) == (5, 0.0, 1.0)
    assert (b.n, b.lgf_without_mgf, b.either) == (10, 0.6, 0.9)
    ci = stats.binomtest(6, 10).proportion_ci(0.95, method="exact")
    assert b.lgf_without_mgf_ci95 == pytest.approx((ci.low, ci.high))
    assert a.lgf_without_mgf_ci95 == pytest.approx((0.0, 1 - 0.025 ** (1 / 5)))
    assert np.isnan(proportion_ci95(0, 0)[0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.data())
def test_proportion_interval_holds_the_estimate(n, data):
    k = data.draw(st.integers(0, n))
    lo, hi = proportion_ci95(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_twitch_at_the_site_region_stands_out():
    rng = np.random.default_rng(2)
    n = 20
    near = np.column_stack(
        [rng.normal(2.0, 0.3, n), rng.normal(0.6, 0.2, n), rng.normal(0.5, 0.2, n)]
    )
    even = rng.normal(1.0, 0.3, (n, 3))
    peaks = np.vstack([near, even, [[np.nan, 1.0, 1.0]]])
    configs = ["C1-R"] * n + ["C5-R"] * n + ["C1-R"]
    a, b = twitch_selectivity(configs, peaks)
    assert a.configuration == "C1-R" and a.n == n  # the NaN row left out
    assert a.strongest_region == 0 and a.ratio[0] > 3 and a.ratio_ci95[0, 0] > 1
    assert b.strongest_region == -1  # nothing stands out
    assert all(lo <= r <= hi for r, (lo, hi) in zip(b.ratio, b.ratio_ci95, strict=True))
    few = twitch_selectivity(["C2-R"] * 2, [[1.0, 0.1], [1.0, 0.1]])[0]
    assert few.strongest_region == -1 and np.isnan(few.ratio).all()
    with pytest.raises(ValueError, match="region_peak_displacement_mm"):
        twitch_selectivity(["C1-R"], [[1.0]])


def test_site_map_groups_by_configuration():
    x = X4
    fit = fit_bidirectional(x, latencies(x, 0.0675, 30.0)).to_dict()
    t = latencies(x, 0.0675, 30.0) + np.array([0.0, 0.06e-3, 0.0, 0.0])
    bent = fit_bidirectional(x, t, site_m=0.0675).to_dict()
    assert bent["determined"] and bent["velocity_m_per_s"] > 31
    records = [
        {
            "configuration": "C3-A4", "site_m": 0.0675, "responded": True,
            "volleys": [{"fibre": "mgf", "clean": True}], "bidirectional": [fit],
            "region_peak_displacement_mm": [0.2, 1.5, 1.4, 0.3],
        }
        for _ in range(4)
    ] + [
        # Not clean and imprecise (4 pairs, 0.1 ms off the V): not pooled.
        {"configuration": "C3-A4", "site_m": 0.0675, "responded": True,
         "volleys": [{"fibre": "mgf", "clean": False}], "bidirectional": [bent],
         "region_peak_displacement_mm": [0.2, 1.5, 1.4, 0.3]},
    ] + [
        {"configuration": "C7-R", "responded": True, "volleys": [{"fibre": "lgf"}],
         "region_peak_displacement_mm": [0.2, 0.2, 0.3, 1.0]},
        {"configuration": "C7-R", "responded": False, "volleys": [],
         "region_peak_displacement_mm": [0.1, 0.1, 0.1, 0.1]},
    ]  # fmt: skip
    c3, c7 = site_map(records)
    assert c3["configuration"] == "C3-A4" and c3["n"] == 5 and c3["site_m"] == 0.0675
    assert c3["propagation"]["mgf"]["n"] == 4
    assert c3["propagation"]["mgf"]["site_m_median"] == pytest.approx(0.0675)
    assert c3["propagation"]["mgf"]["velocity_m_per_s_median"] == pytest.approx(30.0)
    assert c3["propagation"]["lgf"]["n"] == 0
    assert c7["response_probability"] == 0.5
    assert c7["selectivity"]["lgf_without_mgf"] == 0.5
    assert c7["fibre_probability"] == {"mgf": 0.0, "lgf": 0.5}
    assert c7["twitch"]["n"] == 2


def test_configuration_order():
    names = ["C10-A0", "C2-R", "C2-A3", "X", "C2-A10"]
    assert sorted(names, key=configuration_key) == [
        "C2-A3", "C2-A10", "C2-R", "C10-A0", "X",
    ]  # fmt: skip


@pytest.mark.parametrize("known", [True, False])
def test_an_epoch_without_spikes_gives_no_fit(known):
    """Artifact, hum and noise only: no volley, so no velocity and no site."""
    scene = Scene(site_m=0.0675, fibres=(), seed=4)
    r = _run(scene, known=known)
    assert not r.response.responded and r.fits == ()
    assert r.to_dict()["bidirectional"] == []
