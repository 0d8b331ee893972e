"""Closed loop: how fast the optimiser finds the best stimulus, and how long the
host takes to choose it.

Part 1, 20 simulated worms (seeds 0–19; MGF threshold 2.2–3.6 Vpp, MGF 20–35 m/s,
LGF 10–18 m/s, LGF threshold ratio 1.3–1.6). Each stimulus goes through the
simulated worm (thresholds with trial-to-trial noise, habituation at 1 Hz,
recruitment) and the real measurement: its 4-channel epoch (noise, hum, drift,
stimulus artifact) is rendered and analysed by ``analysis.propagation``, exactly
as online. Objective: mean AP amplitude per µC of charge (the efficiency
question a stimulator designer asks; its optimum lies on the threshold ridge,
not at a corner). "Best achievable" is the worm's expected objective,
maximised on a fine 81 × 81 grid, with the worm's habituation at that moment
(thresholds rise ~1 % per stimulus at 1 Hz, so the best stimulus drifts); a
strategy has "reached" it when the point it would recommend now (best observed;
for the optimiser, the observed point of highest posterior mean) scores ≥ 95 %
of that. Grid = the 9 × 8 sweep (72
stimuli) in random order; random = uniform; optimiser = GP-UCB (β = 2).
Figures: ``optimizer_fraction_of_grid`` = median stimuli the optimiser needed /
72 (target ≤ 0.25), medians for all three side by side, and
``optimizer_proposals_outside_limits`` (must be 0).

Part 2, the mixed space (``*_large``): 28 electrode configurations × 6
amplitudes × 6 durations = 1008 grid points, 20 worms with site-dependent
thresholds; stimuli to 95 % of the best for grid, random and the optimiser,
and the LGF-selective search: 50 stimuli maximising the LGF volley's amplitude
(0 when it did not fire) with P(MGF) ≤ 0.1 (constrained EI), and again
maximising whether the LGF fired (0/1, ``*_fired``); grid and random score the
same measure times "the MGF stayed silent" and recommend their best observed.
"Found" means the recommendation has P(LGF) ≥ 0.8 and P(MGF) ≤ 0.1 *for the
worm as it is at the end*: 50 stimuli at 1 Hz raise its thresholds by ~25 %
(habituation), and the recommendation is the stimulus the experimenter uses
next. This is deliberately not judged at the habituation when the point was
tested: a stimulus that excited the LGF alone at stimulus 6 but no longer
does when it is used has not been found (judged that way, 1 of the 3 misses
of the first version would have passed: P(LGF) 0.89 when tested, 0.45 at the
end; the other two were single responses near threshold, P(LGF) 0.53 and 0.67
when tested). What lets the optimiser meet it: the
graded measure rewards a margin above the LGF's threshold, which survives
the drift (a 0/1 measure is equally 1 just above threshold); for 0/1
measures the GP's noise has a floor (``BINARY_MIN_NOISE``) and the
recommendation is the highest lower confidence bound, so one lucky response
near threshold is not recommended. Caveat: the graded measure helps because
the simulated volley grows above threshold (``recruitment_gain``); whether a
real LGF volley does so enough is not determined here, and the ``_fired``
figures are the search without that help.

Then the decision time of the mixed search with 300–600 observations (300
decisions; quick: 50): wall and CPU time (thread and process), on the machine
as it is ("idle", its load average recorded) and beside two CPU-bound
processes (``benchmarks._load``), and those again with this process at
nice −10. Run part 2 or the decisions alone with ``python -m
benchmarks.bench_closed_loop large|selective|decision``.

Part 3, latency on the simulated rig over its pseudo-terminal (the simulator in
its own process): ``closed_loop_host_p99_ms`` (response window received →
next command written; target ≤ 5), ``closed_loop_decision_ms_p99``,
``closed_loop_round_trip_p99_ms`` (write → board's ack). 100 stimuli; quick: 30.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import replace

import numpy as np

from analysis.propagation import analyse_stimulus
from firmware_bridge.sim.worm import (
    DEFAULT_STIM_ELECTRODES_M,
    WormModel,
    WormParams,
    threshold_vpp,
)
from rig.closed_loop import (
    BayesianSearch,
    GridSearch,
    Objective,
    ParameterSpace,
    RandomSearch,
)
from rig.safety import default_safety_limits

SPACE = ParameterSpace()
OBJECTIVE = Objective(measure="amplitude_uv_mean", per_charge=True)
FS = 30_000.0
PRE, POST = round(2e-3 * FS), round(15e-3 * FS)


def worm_params(seed: int) -> WormParams:
    rng = np.random.default_rng(1000 + seed)
    return WormParams(
        mgf_rheobase_vpp=rng.uniform(2.2, 3.6) / 1.03,  # threshold at ~2 ms
        mgf_velocity_m_per_s=rng.uniform(20, 35),
        lgf_velocity_m_per_s=rng.uniform(10, 18),
        lgf_threshold_ratio=rng.uniform(1.3, 1.6),
    )


def expected_score(
    params: WormParams, amplitude, duration, habituation: float = 0.0
) -> np.ndarray:
    """E[MGF amplitude × recruitment] per µC, by quadrature, for a worm whose
    thresholds are raised by ``habituation`` (as WormModel does)."""
    z = np.linspace(-4, 4, 161)
    w = np.exp(-z * z / 2)
    w /= w.sum()
    a = np.asarray(amplitude, float)[..., None]
    d = np.asarray(duration, float)[..., None]
    mean = threshold_vpp(params, d) * (1 + habituation)
    thr = mean * (1 + params.threshold_noise_cv * z)
    fired = a >= thr
    recruit = 1 + params.recruitment_gain * np.tanh((a - thr) / thr * 3)
    amp = (fired * recruit * w).sum(-1) * params.mgf_spike_uv
    charge_uc = (a[..., 0] / 2) / 1000.0 * d[..., 0] / math.pi * 1e6
    return amp / charge_uc


class SimulatedWorm:
    """Stimulus in, measured response out, one per second like the rig."""

    def __init__(self, seed: int) -> None:
        self.params = worm_params(seed)
        self.model = WormModel(self.params, fs_hz=FS, seed=seed)
        self.positions = self.model.geometry.pair_centres_m()
        self.k = 0

    def respond(self, point) -> float:
        amplitude, duration, _ = point
        self.k += 1
        onset = int(self.k * FS)
        self.model.stimulate(onset, amplitude, duration)
        epoch_uv = self.model.render(onset - PRE, PRE + POST) * 1e6
        r = analyse_stimulus(
            epoch_uv, fs_hz=FS, onset=PRE, duration_s=duration,
            positions_m=self.positions,
        )  # fmt: skip
        amps = [a for a in r.amplitude_uv if np.isfinite(a)] if r.responded else []
        return OBJECTIVE.score(float(np.mean(amps)) if amps else 0.0, point)


def stimuli_to_reach(make_search, seed: int, budget: int, limits, aa, dd):
    """How many stimuli until the recommendation scores ≥ 95 % of the best, both
    judged on the worm as it is then (habituation at 1 Hz raises its thresholds
    by ~1 % a stimulus, so the best stimulus drifts during a run)."""
    worm = SimulatedWorm(seed)
    search = make_search()
    outside = 0
    for k in range(1, budget + 1):
        point = search.propose()
        try:
            limits.check(SPACE.pulse(point))
        except ValueError:
            outside += 1
        except AttributeError:  # host limits not yet per configuration
            pass
        if not SPACE.contains(*point):
            outside += 1
        if hasattr(search, "prepare"):
            search.prepare()
        search.observe(point, worm.respond(point))
        rec = search.recommendation()
        h = worm.model._habituation
        best = float(expected_score(worm.params, aa, dd, h).max())
        if expected_score(worm.params, rec[0], rec[1], h) >= 0.95 * best:
            return k, outside
    return math.inf, outside


def efficiency_part(n_worms: int) -> dict[str, float]:
    limits = default_safety_limits()
    aa, dd = np.meshgrid(
        np.linspace(*SPACE.amplitude_vpp, 81), np.linspace(*SPACE.duration_s, 81)
    )
    grid_n = 9 * 8
    counts = {"grid": [], "random": [], "optimizer": []}
    outside = 0
    for seed in range(n_worms):
        makers = {
            "grid": lambda s=seed: GridSearch(SPACE, 9, 8, seed=s),
            "random": lambda s=seed: RandomSearch(SPACE, seed=s),
            "optimizer": lambda s=seed: BayesianSearch(SPACE, seed=s),
        }
        for name, make in makers.items():
            k, bad = stimuli_to_reach(make, seed, grid_n, limits, aa, dd)
            counts[name].append(k)
            outside += bad
        print(
            f"  worm {seed:2d}: grid {counts['grid'][-1]}, random "
            f"{counts['random'][-1]}, optimizer {counts['optimizer'][-1]} stimuli"
        )
    med = {k: float(np.median(v)) for k, v in counts.items()}
    return {
        "optimizer_fraction_of_grid": med["optimizer"] / grid_n,
        "optimizer_median_stimuli": med["optimizer"],
        "random_median_stimuli": med["random"],
        "grid_median_stimuli": med["grid"],
        "grid_sweep_stimuli": float(grid_n),
        "optimizer_proposals_outside_limits": float(outside),
    }


def latency_part(n: int, loaded: bool = True) -> dict[str, float]:
    """The loop over the pty, on the machine as it is and (``loaded``) beside
    two CPU-bound processes taking both cores (figures ``*_loaded``); the
    deciding thread raised to nice −10 where permitted, as a closed loop's."""
    import os

    from threadpoolctl import threadpool_limits

    from benchmarks._load import busy_processes
    from rig.procedures.latency import (
        external_simulator,
        measure_loop_latency,
        open_loop_session,
    )

    threadpool_limits(1, user_api="blas")  # as the neurorig CLI does
    figures: dict[str, float] = {}
    for suffix in ("", "_loaded") if loaded else ("",):
        with busy_processes(2) if suffix else contextlib.nullcontext():
            with external_simulator(1) as port:
                session = open_loop_session(port)
                try:
                    report = measure_loop_latency(session, n=n)
                finally:
                    session.close()
            load = os.getloadavg()[0]
        print(
            f"  {'two CPU hogs' if suffix else 'as it is'} (load average {load:.1f}):"
        )
        print(report.format())
        p = report.percentiles_ms
        figures.update({
            f"closed_loop_host_p50_ms{suffix}": p(report.host_s)["p50"],
            f"closed_loop_host_p99_ms{suffix}": p(report.host_s)["p99"],
            f"closed_loop_decision_ms_p99{suffix}": p(report.decision_s)["p99"],
            f"closed_loop_round_trip_p99_ms{suffix}": p(report.round_trip_s)["p99"],
            f"closed_loop_priority_raised{suffix}": float(bool(report.priority_raised)),
            f"closed_loop_load_average{suffix}": load,
        })  # fmt: skip
    return figures


# ---------------------------------------------------------------- part 2: sites

# 8 electrodes (the simulated raceway's); 28 configurations: each against the
# common return, each neighbour pair both ways round, every second electrode.
LARGE_CONFIGS = tuple(
    [f"C{i}-R" for i in range(8)]
    + [f"C{i}-A{i + 1}" for i in range(7)]
    + [f"C{i + 1}-A{i}" for i in range(7)]
    + [f"C{i}-A{i + 2}" for i in range(6)]
)
LARGE_GRID = (6, 6)  # amplitudes × durations per configuration: 1008 points
LARGE_BUDGET = 300  # stimuli before a strategy counts as "never"
SELECTIVE_BUDGET = 50  # stimuli for the LGF-selective search (5 % of the grid)
LGF_MIN, MGF_MAX = 0.8, 0.1  # "LGF-selective": P(LGF) ≥ 0.8 with P(MGF) ≤ 0.1
Z = np.linspace(-4, 4, 41)
W = np.exp(-Z * Z / 2) / np.exp(-Z * Z / 2).sum()


def large_space():
    from rig.closed_loop.space import MixedSpace

    return MixedSpace(
        configurations=LARGE_CONFIGS,
        electrode_positions_m=DEFAULT_STIM_ELECTRODES_M,
        amplitude_vpp=SPACE.amplitude_vpp,
        duration_s=SPACE.duration_s,
    )


def site_worm_params(seed: int) -> WormParams:
    """Part 1's physiology, and where along the body each fibre is preferred."""
    rng = np.random.default_rng(2000 + seed)
    return replace(
        worm_params(seed),
        mgf_field_end_m=rng.uniform(0.035, 0.060),
        giant_field_overlap_m=rng.uniform(0.010, 0.020),
        mgf_posterior_threshold_ratio=rng.uniform(1.5, 2.1),
        lgf_posterior_threshold_ratio=rng.uniform(0.8, 1.0),
    )


def fire_probability(params, fibre, site_m, amplitude, duration, habituation):
    mean = threshold_vpp(params, duration, fibre, site_m) * (1 + habituation)
    return 0.5 * (1 + math.erf((amplitude - mean) / (params.threshold_noise_cv * mean
                                                      * math.sqrt(2))))  # fmt: skip


def expected_site_score(params, site_m, amplitude, duration, habituation):
    """E[amplitude of the largest volley × recruitment] per µC (as part 1, with
    both fibres: whichever fires bigger is the response), by quadrature."""
    a = np.asarray(amplitude, float)[..., None, None]
    d = np.asarray(duration, float)[..., None, None]
    total = 0.0
    amp = []
    for fibre, spike_uv, zz in (("mgf", params.mgf_spike_uv, Z[:, None]),
                                ("lgf", params.lgf_spike_uv, Z[None, :])):  # fmt: skip
        mean = threshold_vpp(params, d, fibre, site_m) * (1 + habituation)
        thr = mean * (1 + params.threshold_noise_cv * zz)
        recruit = 1 + params.recruitment_gain * np.tanh((a - thr) / thr * 3)
        amp.append(np.where(a >= thr, recruit * spike_uv, 0.0))
    total = (np.maximum(amp[0], amp[1]) * W[:, None] * W[None, :]).sum((-1, -2))
    charge_uc = (np.asarray(amplitude, float) / 2) / 1000.0 * np.asarray(
        duration, float) / math.pi * 1e6  # fmt: skip
    return total / charge_uc


@functools.cache
def best_achievable(seed: int, space) -> tuple[np.ndarray, np.ndarray]:
    """The best expected efficiency over the space (31 × 31 amplitudes ×
    durations at every site) against habituation (thresholds × (1 + h))."""
    params = site_worm_params(seed)
    aa, dd = np.meshgrid(np.linspace(*space.amplitude_vpp, 31),
                         np.linspace(*space.duration_s, 31))  # fmt: skip
    sites = sorted({space.site_m(c) for c in space.configurations})
    h_grid = np.linspace(0, 0.6, 13)
    best = np.array([
        max(expected_site_score(params, s, aa, dd, h).max() for s in sites)
        for h in h_grid
    ])  # fmt: skip
    return h_grid, best


class SiteWorm:
    """Stimulus through a configuration in, the worm's response out (1 Hz)."""

    def __init__(self, seed: int, space) -> None:
        self.params = site_worm_params(seed)
        self.model = WormModel(self.params, fs_hz=FS, seed=seed)
        self.space = space
        self.k = 0
        self.h_grid, self.best = best_achievable(seed, space)

    @property
    def habituation(self) -> float:
        return self.model._habituation

    def best_now(self) -> float:
        return float(np.interp(self.habituation, self.h_grid, self.best))

    def stimulate(self, point):
        """(largest volley µV per µC, LGF fired, MGF fired, the LGF volley's
        amplitude µV or 0) for one stimulus."""
        _, a, d, *_ = self.space.point(*point)
        config = self.space.pulse(point)
        self.k += 1
        before = len(self.model._spikes)
        outcome = self.model.stimulate(int(self.k * FS), a, d,
                                       cathode=config.cathode, anode=config.anode)  # fmt: skip
        amps = [spike[2] * 1e6 for spike in self.model._spikes[before:]]
        charge = self.space.charge_per_phase_uc(point)
        lgf_uv = amps[-1] if outcome.lgf_fired else 0.0  # the MGF's comes first
        return (max(amps, default=0.0) / charge, float(outcome.lgf_fired),
                float(outcome.mgf_fired), lgf_uv)  # fmt: skip

    def score_now(self, point) -> float:
        c, a, d, *_ = self.space.point(*point)
        return float(expected_site_score(self.params, self.space.site_m(c), a, d,
                                         self.habituation))  # fmt: skip

    def selective_now(self, point) -> bool:
        c, a, d, *_ = self.space.point(*point)
        site, h = self.space.site_m(c), self.habituation
        return (fire_probability(self.params, "lgf", site, a, d, h) >= LGF_MIN
                and fire_probability(self.params, "mgf", site, a, d, h) <= MGF_MAX)  # fmt: skip


def _check_pulse(space, limits, point) -> int:
    """1 when a proposal lies outside the space or the rig's limits."""
    bad = not space.contains(point)
    try:
        limits.check(space.pulse(point))
    except ValueError:
        bad = True
    except AttributeError:  # host limits not yet per configuration: space only
        pass
    return int(bad)


def _large_makers(space, seed: int) -> dict:
    from rig.closed_loop.mixed_search import MixedBayesianSearch

    return {
        "grid": lambda: GridSearch(space, *LARGE_GRID, seed=seed),
        "random": lambda: RandomSearch(space, seed=seed),
        "optimizer": lambda: MixedBayesianSearch(space, seed=seed),
    }


def large_part(
    n_worms: int, parts=("efficiency", "selective"), first_worm: int = 0
) -> dict[str, float]:
    """Efficiency over 1008 grid points and LGF-selective search, 20 worms
    (``parts``: either or both; ``first_worm``: the first seed, other worms
    than the figures' to check that a rule was not fitted to them)."""
    space = large_space()
    limits = default_safety_limits()
    grid_n = len(space.grid(*LARGE_GRID))
    counts: dict[str, list[float]] = {"grid": [], "random": [], "optimizer": []}
    selective: dict[str, int] = {"grid": 0, "random": 0, "optimizer": 0}
    selective_fired: dict[str, int] = {"grid": 0, "random": 0, "optimizer": 0}
    outside = 0
    for seed in range(first_worm, first_worm + n_worms):
        makers = _large_makers(space, seed)
        line, found, found_fired = [], [], []
        if "efficiency" in parts:
            outside += _efficiency_worm(space, limits, seed, makers, counts, line)
        if "selective" in parts:
            outside += _selective_worm(space, limits, seed, makers, selective, found)
            outside += _selective_worm(space, limits, seed, makers, selective_fired,
                                       found_fired, objective="fired")  # fmt: skip
        print(f"  worm {seed:2d}: stimuli to 95 % {', '.join(line) or '-'}; "
              f"LGF-selective found: {', '.join(found) or '-'} (maximising "
              f"whether it fired: {', '.join(found_fired) or '-'})", flush=True)  # fmt: skip
    figures = {}
    if "efficiency" in parts:
        med = {k: float(np.median(v)) for k, v in counts.items()}
        figures.update({
            "optimizer_fraction_of_grid_large": med["optimizer"] / grid_n,
            "optimizer_median_stimuli_large": med["optimizer"],
            "random_median_stimuli_large": med["random"],
            "grid_median_stimuli_large": med["grid"],
            "grid_points_large": float(grid_n),
        })  # fmt: skip
    if "selective" in parts:
        figures.update({
            "lgf_selective_found_optimizer": float(selective["optimizer"]),
            "lgf_selective_found_random": float(selective["random"]),
            "lgf_selective_found_grid": float(selective["grid"]),
            "lgf_selective_found_optimizer_fired": float(selective_fired["optimizer"]),
            "lgf_selective_found_random_fired": float(selective_fired["random"]),
            "lgf_selective_found_grid_fired": float(selective_fired["grid"]),
        })  # fmt: skip
    figures["optimizer_proposals_outside_limits_large"] = float(outside)
    return figures


def _efficiency_worm(space, limits, seed, makers, counts, line) -> int:
    """Stimuli to 95 % of the best for each strategy on worm ``seed``; returns
    the proposals outside the limits."""
    outside = 0
    for name, make in makers.items():
        worm, search = SiteWorm(seed, space), make()
        reached = math.inf
        for k in range(1, LARGE_BUDGET + 1):
            point = search.propose()
            outside += _check_pulse(space, limits, point)
            if hasattr(search, "prepare"):
                search.prepare()
            search.observe(point, worm.stimulate(point)[0])
            rec = search.recommendation()
            if worm.score_now(rec) >= 0.95 * worm.best_now():
                reached = k
                break
        counts[name].append(reached)
        line.append(f"{name} {reached}")
    return outside


def _selective_worm(
    space, limits, seed, makers, selective, found, objective="amplitude"
) -> int:
    """LGF without MGF, 50 stimuli: maximise the LGF volley's amplitude
    (``objective`` "amplitude"; or whether it fired, "fired") with
    P(MGF) ≤ MGF_MAX; each strategy's recommendation judged on the worm as it
    is at the end (see the module's description); returns the proposals
    outside the limits."""
    from rig.closed_loop.mixed_search import MixedBayesianSearch

    outside = 0
    for name in makers:
        worm = SiteWorm(seed, space)
        search = (
            MixedBayesianSearch(space, constraint_max=MGF_MAX, seed=seed)
            if name == "optimizer" else makers[name]()
        )  # fmt: skip
        for _ in range(SELECTIVE_BUDGET):
            point = search.propose()
            outside += _check_pulse(space, limits, point)
            if hasattr(search, "prepare"):
                search.prepare()
            _, lgf, mgf, lgf_uv = worm.stimulate(point)
            measure = lgf_uv if objective == "amplitude" else lgf
            # the baselines' score: the LGF alone (their best observed is it)
            score = measure if name == "optimizer" else measure * (1 - mgf)
            search.observe(point, score, constraint=mgf)
        ok = worm.selective_now(search.recommendation())
        selective[name] += ok
        found.append(f"{name} {'yes' if ok else 'no'}")
    return outside


def _decisions(n_observations: int, n_decisions: int) -> dict[str, np.ndarray]:
    """Wall, thread-CPU and process-CPU time of ``n_decisions`` decisions of the
    mixed search after ``n_observations`` (the loop's order: prepare while the
    response comes, observe it, decide), seconds."""
    import time

    from rig.closed_loop.mixed_search import MixedBayesianSearch

    space = large_space()
    worm = SiteWorm(0, space)
    search = MixedBayesianSearch(space, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(n_observations - 1):
        point = space.random_point(rng)
        search.observe(point, worm.stimulate(point)[0])
    wall, thread, process = [], [], []
    point = space.random_point(rng)
    for _ in range(n_decisions):
        search.prepare()
        search.observe(point, worm.stimulate(point)[0])
        t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        point = search.propose()
        wall.append(time.perf_counter() - t0)
        thread.append(time.thread_time() - c0)
        process.append(time.process_time() - p0)
    return {"wall": np.array(wall), "thread": np.array(thread),
            "process": np.array(process), "candidates": len(search._candidates)}  # fmt: skip


def decision_part(n_observations: int = 300, n_decisions: int = 100) -> dict:
    """Decision time of the mixed search with ``n_observations``, on the
    machine as it is ("idle": whatever else runs on it, its load average
    recorded) and beside two CPU-bound processes (``_load.busy_processes``).
    Wall time is what the loop waits; CPU time (this thread's, and the
    process's) is the decision's own cost, which the load cannot inflate.
    Third, the hogs again with this process at nice −10 (where allowed: a
    host that gives the closed loop priority over its other work), which
    shows how much of the loaded wall time is waiting for a core."""
    import os

    from benchmarks._load import busy_processes
    from rig.core.realtime import tune_for_streaming

    tune_for_streaming()  # as a session does: GIL switch interval, gc.freeze()
    figures: dict[str, float] = {}
    runs = (("idle", ""), ("two CPU hogs", "_loaded"),
            ("two CPU hogs, nice −10", "_loaded_nice"))  # fmt: skip
    for label, suffix in runs:
        with busy_processes(2) if suffix else contextlib.nullcontext():
            raised = suffix == "_loaded_nice"
            if raised:  # after the hogs started: they must not inherit it
                try:
                    os.nice(-10)
                except OSError:
                    print(f"  {label}: not allowed here, not measured")
                    continue
            try:
                t = _decisions(n_observations, n_decisions)
            finally:
                if raised:
                    os.nice(10)
            load = os.getloadavg()[0]
        ms = {k: t[k] * 1e3 for k in ("wall", "thread", "process")}
        p99 = {k: float(np.percentile(v, 99)) for k, v in ms.items()}
        print(f"  {label} (load average {load:.1f}): {n_decisions} decisions with "
              f"{n_observations}–{n_observations + n_decisions} observations, "
              f"{t['candidates']} candidates: wall p50 {np.median(ms['wall']):.3f} "
              f"ms, p99 {p99['wall']:.3f} ms; CPU p50 "
              f"{np.median(ms['thread']):.3f} ms, p99 {p99['thread']:.3f} ms "
              f"(process CPU p99 {p99['process']:.3f} ms)")  # fmt: skip
        figures.update({
            f"optimizer_decision_ms_p99{suffix}": p99["wall"],
            f"optimizer_decision_ms_p50{suffix}": float(np.median(ms["wall"])),
            # the CPU time is what a loaded machine cannot inflate
            f"optimizer_decision_cpu_ms_p99{suffix}": p99["thread"],
            f"optimizer_decision_process_cpu_ms_p99{suffix}": p99["process"],
            f"optimizer_decision_load_average{suffix}": load,
        })  # fmt: skip
    return figures


def run(quick: bool = False) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as the neurorig CLI does
    figures = efficiency_part(5 if quick else 20)
    figures.update(large_part(5 if quick else 20))
    figures.update(decision_part(300, 50 if quick else 300))
    figures.update(latency_part(30 if quick else 100))
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run parts of this benchmark alone (``benchmarks/run.py closed_loop`` runs
    them all): ``python -m benchmarks.bench_closed_loop large selective
    decision [--worms N] [--observations N] [--decisions N]``."""
    import argparse
    import json

    from threadpoolctl import threadpool_limits

    parts = ("efficiency", "large", "selective", "decision", "latency")
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=parts,
                        help="large: part 2's efficiency over 1008 points; selective: "
                        "its LGF-selective search")  # fmt: skip
    parser.add_argument("--worms", type=int, default=20)
    parser.add_argument("--first-worm", type=int, default=0,
                        help="first seed of part 2 (others than 0–19: held out)")  # fmt: skip
    parser.add_argument("--observations", type=int, default=300)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args(argv)
    threadpool_limits(1, user_api="blas")  # as the neurorig CLI does
    figures: dict[str, float] = {}
    if "efficiency" in args.parts:
        figures.update(efficiency_part(args.worms))
    chosen = [p for p in ("large", "selective") if p in args.parts]
    if chosen:
        names = {"large": "efficiency", "selective": "selective"}
        chosen_parts = tuple(names[p] for p in chosen)
        figures.update(large_part(args.worms, chosen_parts, args.first_worm))
    if "decision" in args.parts:
        figures.update(decision_part(args.observations, args.decisions))
    if "latency" in args.parts:
        figures.update(latency_part(100))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
