"""Bayesian search over a mixed space: electrode configurations, amplitude,
duration, pulses per train, train rate and polarity (``MixedSpace``).

One Gaussian process over the whole space, with the product kernel of
``_gp.MixedKernelParams``: what one site teaches about the response spreads to
its neighbours by the site length scale (fitted), and to the other anodes and
polarities by their fitted correlations. The search chooses from a fixed
candidate set (``resolution`` steps of amplitude and duration per value of the
other axes); decisions use a posterior prepared from the older observations
(extended by a Cholesky row per observation, ``PreparedPosterior.extended``)
plus the newest, so a decision costs O(n·m) for n observations and m
candidates. Hyper-parameters are refitted on a fixed schedule of observation
counts (every one up to 20, every 5th to 100, every 20th after), always from the
same start: the decision after n observations depends only on them, never on
when ``prepare`` ran (replay gives the same decisions).

Three objectives:

* maximise the score (upper confidence bound ``μ + β·σ``);
* ``minimise_charge``: maximise the response *and* minimise the charge per
  phase (known exactly from the point, so not modelled): the acquisition is
  the hypervolume the optimistic response ``μ + β·σ`` would add to the
  observed Pareto front; ``pareto_front()`` reports the front over the tested
  points (posterior mean response against charge);
* ``constraint_max``: maximise the score while a second measure stays at or
  below a bound (e.g. P(LGF) while P(MGF) ≤ 0.1): a second GP models the
  constraint measure, and the acquisition is expected improvement over the best
  feasible observation × the probability that the constraint holds.

Safety, per configuration: with ``safe_radius`` each configuration's safe set
starts at its gentlest stimulus (lowest amplitude, duration, pulses, rate) and
grows only within ``safe_radius`` (on the unit axes) of that configuration's
points tested without a safety violation; a configuration's region never
spreads to another (a site can be unsafe where its neighbour is not).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr

from rig.closed_loop._gp import (
    DEFAULT_MIXED,
    MixedKernelParams,
    PreparedPosterior,
    fit_mixed,
)
from rig.closed_loop._gp import posterior as gp_posterior
from rig.closed_loop.search import Decision, _Search
from rig.closed_loop.space import FEATURE_UNIT, MixedSpace, SitePoint

# Initial design on the unit (amplitude, duration) square, without a safe set.
DESIGN = ((0.1, 0.1), (0.9, 0.9), (0.1, 0.9), (0.9, 0.1), (0.5, 0.5))


# The least noise (share of the normalised targets' variance) a model of an
# all-or-none measure (every target 0 or 1: LGF fired or not) may be fitted
# with. Such a response is a Bernoulli draw near threshold, yet maximum
# likelihood on a few dozen 0/1 targets drives the noise to its bound (1e-6 in
# 19 of 20 benchmark worms) and the GP then explains each one exactly: a
# single lucky response near threshold looks as sure as a region that always
# fires, and the recommendation picks among them at random.
BINARY_MIN_NOISE = 0.1


def all_or_none(y: np.ndarray) -> bool:
    """True for 0/1 targets with both answers seen (a continuous measure never
    is; all zeros, nothing fired yet, is not either)."""
    y = np.asarray(y, dtype=float)
    return bool(np.all((y == 0) | (y == 1)) and 0 < y.sum() < len(y))


def refit_count(n: int) -> int:
    """Observations the hyper-parameters are fitted on when ``n`` are known."""
    if n <= 20:
        return n
    if n <= 100:
        return n - n % 5
    return n - n % 20


class MixedBayesianSearch(_Search):
    """GP search over a ``MixedSpace`` (see the module's description).

    >>> space = MixedSpace(configurations=("C0-R", "C1-R", "C2-R"),
    ...                    electrode_positions_m=(0.01, 0.03, 0.05))
    >>> search = MixedBayesianSearch(space, safe_radius=0.3)
    >>> search.propose()[:3]  # the first configuration's gentlest stimulus
    ('C0-R', 2.0, 0.002)
    >>> search.observe(search.last_decision.point, 0.0)  # nothing fired
    >>> search.propose().configuration in space.configurations
    True
    """

    name = "bayesian"

    def __init__(
        self,
        space: MixedSpace,
        *,
        beta: float = 2.0,
        n_initial: int = 5,
        safe_radius: float | None = None,
        resolution: int = 11,
        minimise_charge: bool = False,
        constraint_max: float | None = None,
        load_ohm: float = 1000.0,
        seed: int = 0,
    ) -> None:
        super().__init__(space)  # type: ignore[arg-type]
        self.space: MixedSpace = space  # type: ignore[assignment]
        self.beta = beta
        self.n_initial = n_initial
        self.safe_radius = safe_radius
        self.minimise_charge = minimise_charge
        self.constraint_max = constraint_max
        self.load_ohm = load_ohm
        self.seed = seed
        self.resolution = resolution
        self._candidates = space.candidates(resolution)
        self._features = space.features(self._candidates)
        self._unit = np.ascontiguousarray(self._features[:, FEATURE_UNIT])
        index = {c: i for i, c in enumerate(space.configurations)}
        self._config = np.array([index[p.configuration] for p in self._candidates])
        self._charge_uc = np.array(
            [space.charge_per_phase_uc(p, load_ohm) for p in self._candidates]
        )
        self._varied = space.varied()
        # the gentlest candidate of each configuration: its safe set's seed
        self._allowed = np.zeros(len(self._candidates), dtype=bool)
        for c in space.configurations:
            self._allowed[self._candidates.index(space.gentlest(c))] = True
        self._safe_seen = 0  # observations folded into _allowed
        self._fits: dict[tuple[str, int], MixedKernelParams] = {}
        self._prepared: dict[str, PreparedPosterior] = {}
        self._last: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._x = np.empty((64, 7))  # feature row per observation (grown by doubling)
        self._n_x = 0
        self._all = np.ones(len(self._candidates), dtype=bool)
        self._q: list[float] = []  # charge per phase per observation, µC

    def observe(
        self,
        point,
        score: float,
        *,
        unsafe: bool = False,
        constraint: float = math.nan,
    ) -> None:
        """Add an observation (its features and charge are kept with it)."""
        point = self.space.point(*point)
        super().observe(point, score, unsafe=unsafe, constraint=constraint)
        if self._n_x == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
        self._x[self._n_x] = self.space.features([point])[0]
        self._n_x += 1
        self._q.append(self.space.charge_per_phase_uc(point, self.load_ohm))

    # ------------------------------------------------------------ the model

    def _xy(self, which: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        obs = self.observations
        values = obs.scores[:n] if which == "objective" else obs.constraints[:n]
        return self._x[: self._n_x][:n], np.array(values, dtype=float)

    def _fit(self, which: str, n: int) -> MixedKernelParams:
        m = refit_count(n)
        key = (which, m)
        if key not in self._fits:
            x, y = self._xy(which, m)
            floor = BINARY_MIN_NOISE if all_or_none(y) else None
            self._fits[key] = fit_mixed(x, y, self._varied, DEFAULT_MIXED, floor)
        return self._fits[key]

    def _prepare(self, which: str, n: int) -> PreparedPosterior:
        """The prepared posterior on the first ``n`` observations."""
        params = self._fit(which, n)
        old = self._prepared.get(which)
        x, y = self._xy(which, n)
        if old is not None and old.params == params and old.x_old.shape[0] <= n:
            done = old.x_old.shape[0]
            prepared = old.extended(x[done:], y[done:]) if done < n else old
        else:
            prepared = PreparedPosterior(x, self._features, params, y)
        self._prepared[which] = prepared
        return prepared

    def _models(self) -> list[str]:
        return ["objective"] + (
            ["constraint"] if self.constraint_max is not None else []
        )

    def prepare(self) -> None:
        """The slow part of the next decision (hyper-parameters on schedule, the
        kernel algebra over the candidates), while the response is on its way;
        with the stimulus on its way known (the last proposal), its Cholesky row
        too, so that the decision is O(candidates) (``PreparedPosterior.expect``;
        a different point observed, e.g. a user's override, is still right, at
        the full cost)."""
        n = len(self.observations.points)
        if n < 2:
            return
        pending = None if self.last_decision is None else self.last_decision.point
        for which in self._models():
            prepared = self._prepare(which, n)
            if pending is not None:
                prepared.expect(self.space.features([pending])[0])

    def posterior_now(self, which: str = "objective") -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over the candidates given every observation."""
        n = len(self.observations.points)
        x, y = self._xy(which)
        if n < 3:
            return gp_posterior(x, y, self._features, self._fit(which, n))
        prepared = self._prepare(which, n - 1)
        return prepared.with_newest(x[-1], y)

    # ------------------------------------------------------------ safety

    def allowed(self) -> np.ndarray:
        """Candidates inside their configuration's safe set (all without one)."""
        if self.safe_radius is None:
            return self._all
        obs = self.observations
        for k in range(self._safe_seen, len(obs.points)):
            if obs.unsafe[k]:
                continue
            point = obs.points[k]
            if point[0] not in self.space.configurations:
                continue
            c = self.space.configurations.index(point[0])
            unit = self._x[k, FEATURE_UNIT]
            near = np.sqrt(((self._unit - unit) ** 2).sum(axis=1))
            self._allowed |= (self._config == c) & (near <= self.safe_radius + 1e-9)
        self._safe_seen = len(obs.points)
        return self._allowed

    # ------------------------------------------------------------ decisions

    def _initial(self, k: int) -> SitePoint | None:
        space = self.space
        configs = space.configurations
        if self.safe_radius is not None:
            return space.gentlest(configs[0]) if k == 0 else None
        if k >= min(self.n_initial, len(DESIGN)):
            return None
        c = configs[round(k * (len(configs) - 1) / max(1, self.n_initial - 1))]
        (a0, a1), (d0, d1) = space.amplitude_vpp, space.duration_s
        u, v = DESIGN[k]
        return SitePoint(
            c,
            a0 + u * (a1 - a0),
            d0 + v * (d1 - d0),
            space.n_pulses[len(space.n_pulses) // 2],
            space.rate_hz[len(space.rate_hz) // 2],
            space.polarities[k % len(space.polarities)],
        )

    def decide(self) -> Decision:
        """The candidate the acquisition prefers (or an initial design point)."""
        k = len(self.observations.points)
        start = self._initial(k)
        if start is not None:
            return Decision(start, f"initial design point {k + 1}")
        allowed = self.allowed()
        mean, std = self.posterior_now("objective")
        self._last = {"objective": (mean, std)}
        n_allowed = int(allowed.sum())
        n_configs = int(np.count_nonzero(np.bincount(self._config[allowed])))
        where = f"{n_allowed} candidates in {n_configs} configurations"
        if self.constraint_max is not None:
            c_mean, c_std = self.posterior_now("constraint")
            self._last["constraint"] = (c_mean, c_std)
            acquisition = self._constrained(mean, std, c_mean, c_std)
            reason = f"max EI × P(constraint ≤ {self.constraint_max:g}) over {where}"
        elif self.minimise_charge:
            acquisition = hypervolume_improvement(
                self._charge_uc, mean + self.beta * std, *self._observed_front()
            )
            reason = f"max hypervolume gain of UCB (β={self.beta:g}) over {where}"
            if not np.any(acquisition[allowed] > 0):
                acquisition = std.copy()
                reason = f"no gain on the front: max σ over {where}"
        else:
            acquisition = mean + self.beta * std
            reason = f"max UCB (β={self.beta:g}) over {where}"
        acquisition = np.where(allowed, acquisition, -np.inf)
        i = int(np.argmax(acquisition))
        return Decision(
            self._candidates[i],
            reason,
            acquisition=float(acquisition[i]),
            mean=float(mean[i]),
            std=float(std[i]),
        )

    def _constrained(self, mean, std, c_mean, c_std) -> np.ndarray:
        """Expected improvement over the best feasible observation × P(feasible)."""
        assert self.constraint_max is not None
        feasible_p = ndtr((self.constraint_max - c_mean) / np.maximum(c_std, 1e-12))
        obs = self.observations
        feasible = [
            s
            for s, c in zip(obs.scores, obs.constraints, strict=True)
            if math.isfinite(c) and c <= self.constraint_max
        ]
        if not feasible:
            return feasible_p
        best = max(feasible)
        z = (mean - best) / np.maximum(std, 1e-12)
        ei = (mean - best) * ndtr(z) + std * np.exp(-0.5 * z * z) / math.sqrt(
            2 * math.pi
        )
        return np.maximum(ei, 1e-12 * std) * feasible_p

    def _observed_front(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The observed (charge, response) Pareto front and the reference response."""
        charge = np.array(self._q)
        response = np.array(self.observations.scores)
        keep = pareto_mask(charge, response)
        reference = min(0.0, float(response.min()))
        return charge[keep], response[keep], reference

    # ------------------------------------------------------------ results

    def _tested_posterior(
        self, which: str = "objective"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std at each tested point (current hyper-parameters)."""
        n = len(self.observations.points)
        x, y = self._xy(which)
        return gp_posterior(x, y, x, self._fit(which, max(n - 1, 2)))

    def _tested_means(self, which: str = "objective") -> np.ndarray:
        """Posterior mean at each tested point (current hyper-parameters)."""
        return self._tested_posterior(which)[0]

    def recommendation(self) -> SitePoint | None:
        """The tested point to use now (by posterior mean, not one lucky observation).

        * maximise: the highest mean;
        * ``minimise_charge``: the least charge on the Pareto front with a mean
          at least 95 % of the front's highest;
        * ``constraint_max``: among points whose constraint's mean is within
          the bound (else the lowest constraint mean), by the lower confidence
          bound ``μ − β·σ`` of the objective, not its mean: many tested points
          share a mean near the top (an LGF that fired, or whose volley has
          saturated), and the highest mean is as often a point near threshold
          that responded once by luck, or before habituation raised the
          threshold, as one that responds reliably. For an all-or-none
          objective (0/1) the highest bound; for a graded one the least
          charge per phase among points whose bound is within 5 % of the
          highest (as the Pareto rule: the gentlest stimulus that does nearly
          as well; the maximum often lies at the strongest pulse, at the edge
          of the constraint, e.g. just below the MGF's threshold).
        """
        obs = self.observations
        if len(obs.points) < 3:
            return super().recommendation()  # type: ignore[return-value]
        if self.constraint_max is not None:
            mean, std = self._tested_posterior()
            c_mean = self._tested_means("constraint")
            ok = c_mean <= self.constraint_max
            if not ok.any():
                return obs.points[int(np.argmin(c_mean))]  # type: ignore[return-value]
            lower = np.where(ok, mean - self.beta * std, -np.inf)
            if all_or_none(np.array(obs.scores)):
                return obs.points[int(np.argmax(lower))]  # type: ignore[return-value]
            best = float(lower.max())
            near = lower >= best - 0.05 * abs(best)
            charge = np.where(near, np.array(self._q), np.inf)
            return obs.points[int(np.argmin(charge))]  # type: ignore[return-value]
        mean = self._tested_means()
        if self.minimise_charge:
            front = self.pareto_front(mean)
            top = max(f["response"] for f in front)
            good = [f for f in front if f["response"] >= top - 0.05 * abs(top)]
            return self.space.point(*min(good, key=lambda f: f["charge_uc"])["point"])
        return obs.points[int(np.argmax(mean))]  # type: ignore[return-value]

    def pareto_front(self, mean: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The tested points no other beats on both response (posterior mean)
        and charge per phase, cheapest first: ``point``, ``charge_uc``,
        ``response``."""
        obs = self.observations
        if not obs.points:
            return []
        if mean is None:
            mean = (
                self._tested_means() if len(obs.points) >= 3 else np.array(obs.scores)
            )
        charge = np.array(self._q)
        keep = np.flatnonzero(pareto_mask(charge, mean))
        keep = keep[np.argsort(charge[keep], kind="stable")]
        front, seen = [], set()
        for i in keep:  # a point tested more than once is on it once
            if obs.points[i] in seen:
                continue
            seen.add(obs.points[i])
            front.append({
                "point": list(obs.points[i]),
                "charge_uc": round(float(charge[i]), 6),
                "response": round(float(mean[i]), 6),
            })  # fmt: skip
        return front

    def by_configuration(self) -> dict[str, dict[str, Any]]:
        """Per configuration: the candidate of highest posterior mean, its mean
        and std (the map over sites), from the last decision's posterior."""
        if "objective" not in self._last:
            return {}
        mean, std = self._last["objective"]
        out = {}
        for c, name in enumerate(self.space.configurations):
            idx = np.flatnonzero(self._config == c)
            i = idx[int(np.argmax(mean[idx]))]
            out[name] = {
                "best_point": list(self._candidates[i]),
                "mean": round(float(mean[i]), 6),
                "std": round(float(std[i]), 6),
            }
        return out

    def posterior_maps(self) -> dict[str, dict[str, Any]]:
        """Per configuration, the posterior over amplitude × duration (the
        candidates' grid) through that configuration's best candidate's pulses,
        rate and polarity: ``amplitude_vpp``, ``duration_s``, ``mean`` and ``std``
        (``[i][j]`` at amplitude i, duration j), ``n_pulses``, ``rate_hz``,
        ``polarity``. Empty before the GP has two observations."""
        mean_std = self._last.get("objective")
        if mean_std is None:
            if len(self.observations.points) < 2:
                return {}
            mean_std = self.posterior_now("objective")
        mean, std = mean_std
        r = self.resolution
        amps = np.linspace(*self.space.amplitude_vpp, r)
        durs = np.linspace(*self.space.duration_s, r)
        out = {}
        for c, name in enumerate(self.space.configurations):
            idx = np.flatnonzero(self._config == c)
            _, _, _, n, rate, p = self._candidates[idx[int(np.argmax(mean[idx]))]]
            # the slice through it: amplitude fastest, then duration (grid order)
            rows = [
                i for i in idx
                if self._candidates[i][3:] == (n, rate, p)
            ]  # fmt: skip
            shape = (r, r)  # [duration, amplitude] in candidate order
            out[name] = {
                "amplitude_vpp": amps.tolist(),
                "duration_s": durs.tolist(),
                "mean": np.round(mean[rows].reshape(shape).T, 6).tolist(),
                "std": np.round(std[rows].reshape(shape).T, 6).tolist(),
                "n_pulses": int(n),
                "rate_hz": float(rate),
                "polarity": int(p),
            }
        return out

    def view(self) -> dict[str, Any]:
        """What a live view needs besides the recorded decision: the posterior
        maps per configuration and every tested point (``tested``, in order)."""
        return {
            "posterior_by_configuration": self.posterior_maps(),
            "tested": [list(p) for p in self.observations.points],
        }

    def state(self) -> dict:
        """Adds the recommendation, the map over configurations and (with
        ``minimise_charge``) the Pareto front."""
        state = super().state()
        recommended = self.recommendation()
        state["recommended_point"] = None if recommended is None else list(recommended)
        state["by_configuration"] = self.by_configuration()
        if self.minimise_charge:
            state["pareto_front"] = self.pareto_front()
        return state


def pareto_mask(charge: np.ndarray, response: np.ndarray) -> np.ndarray:
    """True for the points no other point dominates (charge no higher and
    response no lower, one of them strictly).

    >>> pareto_mask(np.array([1.0, 2.0, 3.0, 2.0]), np.array([5.0, 4.0, 9.0, 6.0])).tolist()
    [True, False, True, True]
    """
    charge, response = np.asarray(charge, float), np.asarray(response, float)
    le = charge[None, :] <= charge[:, None]  # [i, j]: j's charge ≤ i's
    ge = response[None, :] >= response[:, None]
    strict = (charge[None, :] < charge[:, None]) | (
        response[None, :] > response[:, None]
    )
    dominated = np.any(le & ge & strict, axis=1)
    return ~dominated


def hypervolume_improvement(
    charge: np.ndarray,
    response: np.ndarray,
    front_charge: np.ndarray,
    front_response: np.ndarray,
    reference_response: float,
) -> np.ndarray:
    """For each candidate (charge, response), the area it would add to the
    region the front dominates (less charge and more response are better),
    bounded by the candidates' highest charge and ``reference_response``.

    >>> float(hypervolume_improvement(np.array([1.0]), np.array([3.0]),
    ...       np.array([2.0]), np.array([2.0]), 0.0)[0])  # reference charge 2 → 1·3
    3.0
    """
    charge = np.asarray(charge, float)
    response = np.asarray(response, float)
    q_ref = float(max(charge.max(), np.max(front_charge, initial=-np.inf)))
    r_ref = reference_response
    order = np.argsort(front_charge, kind="stable")
    fq, fr = (
        np.asarray(front_charge, float)[order],
        np.asarray(front_response, float)[order],
    )
    # The front's dominated region: above charge fq[i] its height is the best
    # response at that charge or less, a staircase h(q).
    height = np.maximum.accumulate(fr) if fr.size else fr
    edges = np.append(fq, q_ref)
    top = np.maximum(response, r_ref)
    gain = (q_ref - charge) * (top - r_ref)  # the candidate's whole box
    for i in range(fq.size):  # minus its overlap with each stair
        lo = np.maximum(edges[i], charge)
        width = np.clip(edges[i + 1] - lo, 0.0, None)
        gain -= width * np.clip(np.minimum(height[i], top) - r_ref, 0.0, None)
    return np.clip(gain, 0.0, None)
