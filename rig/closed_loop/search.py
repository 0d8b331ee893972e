"""Search strategies with one interface: ``propose()``, ``observe(point, score)``.

* ``GridSearch``: the full sweep, in a fixed (optionally shuffled) order; the baseline.
* ``RandomSearch``: uniform random points in the space; the second baseline.
* ``BayesianSearch``: Gaussian-process regression (scikit-learn's
  ``GaussianProcessRegressor``: a well-kept, tested implementation with kernel
  hyper-parameter fitting; a hand-written numpy GP would repeat it) with the
  upper-confidence-bound rule ``UCB = μ + β·σ`` maximised over a dense candidate
  grid. scikit-learn fits the kernel hyper-parameters (slow) on all but the newest
  observation, ideally while the response is on its way (``prepare``); the
  posterior with them is computed in numpy (``_gp``, ~1 ms) when it arrives.
  Safety: candidates are only ever drawn inside the ParameterSpace (which
  the session builds inside the rig's safety limits), and with ``safe_radius``
  set, only within that distance (unit square) of points already tested without
  a safety violation (SafeOpt-style expanding safe set), starting from the
  gentlest stimulus (lowest amplitude and duration).

Every proposal comes with a ``Decision`` saying why, and ``state()`` gives the
observations and the posterior over the space, for the recording and the GUI.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from rig.closed_loop._gp import KernelParams, PreparedPosterior
from rig.closed_loop._gp import posterior as gp_posterior
from rig.closed_loop.space import MixedSpace, ParameterSpace, SitePoint

Point = tuple[float, float, int] | SitePoint  # a pair point, or a mixed space's


@dataclass(frozen=True, slots=True)
class Decision:
    """A proposal and the reason for it."""

    point: Point
    reason: str
    acquisition: float = float("nan")
    mean: float = float("nan")
    std: float = float("nan")


class _Observations:
    def __init__(self) -> None:
        self.points: list[Point] = []
        self.scores: list[float] = []
        self.unsafe: list[bool] = []
        # the constraint measure's value per observation (constrained searches)
        self.constraints: list[float] = []

    def add(
        self, point: Point, score: float, unsafe: bool, constraint: float = math.nan
    ) -> None:
        self.points.append(point if isinstance(point, tuple) else tuple(point))
        self.scores.append(float(score))
        self.unsafe.append(bool(unsafe))
        self.constraints.append(float(constraint))

    def best(self) -> tuple[Point | None, float]:
        if not self.scores:
            return None, float("nan")
        i = int(np.argmax(self.scores))
        return self.points[i], self.scores[i]

    def to_dict(self) -> dict:
        out = {
            "points": [list(p) for p in self.points],
            "scores": list(self.scores),
            "unsafe": list(self.unsafe),
        }
        if any(math.isfinite(c) for c in self.constraints):
            out["constraints"] = list(self.constraints)
        return out


class _Search:
    name = "search"

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self.observations = _Observations()
        self.last_decision: Decision | None = None

    def observe(
        self,
        point: Point,
        score: float,
        *,
        unsafe: bool = False,
        constraint: float = math.nan,
    ) -> None:
        """Tell the search what ``point`` scored (``unsafe``: a safety violation;
        ``constraint``: the constraint measure, for a constrained search)."""
        self.observations.add(point, score, unsafe, constraint)

    def propose(self) -> Point:
        """The next point to try."""
        decision = self.decide()
        if not self.space.contains(*decision.point):
            raise AssertionError(
                f"{self.name} proposed {decision.point} outside the space"
            )
        self.last_decision = decision
        return decision.point

    def recommendation(self) -> Point | None:
        """The tested point to use now: the best observed score."""
        return self.observations.best()[0]

    def decide(self) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self) -> dict:
        """Observations and the last decision, JSON-serialisable."""
        best, best_score = self.observations.best()
        d = self.last_decision
        return {
            "strategy": self.name,
            "observations": self.observations.to_dict(),
            "best_point": list(best) if best else None,
            "best_score": best_score,
            "decision": None
            if d is None
            else {
                "point": list(d.point),
                "reason": d.reason,
                "acquisition": d.acquisition,
            },
        }


class GridSearch(_Search):
    """Every point of an ``n_amplitude × n_duration`` grid, then repeats."""

    name = "grid"

    def __init__(
        self,
        space: ParameterSpace,
        n_amplitude: int = 9,
        n_duration: int = 8,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__(space)
        self.points = space.grid(n_amplitude, n_duration)
        if seed is not None:
            order = np.random.default_rng(seed).permutation(len(self.points))
            self.points = [self.points[i] for i in order]

    def decide(self) -> Decision:
        """The next grid point, in the shuffled order."""
        i = len(self.observations.points) % len(self.points)
        return Decision(self.points[i], f"grid point {i + 1} of {len(self.points)}")


class RandomSearch(_Search):
    """Uniformly random points (seeded)."""

    name = "random"

    def __init__(self, space: ParameterSpace, *, seed: int = 0) -> None:
        super().__init__(space)
        self._rng = np.random.default_rng(seed)

    def decide(self) -> Decision:
        """A point drawn uniformly from the space."""
        if isinstance(self.space, MixedSpace):
            return Decision(self.space.random_point(self._rng), "uniform random")
        u, v = self._rng.random(2)
        amplitude, duration = self.space.from_unit(u, v)
        pair = int(self._rng.choice(self.space.pairs))
        return Decision((amplitude, duration, pair), "uniform random")


class BayesianSearch(_Search):
    """GP-UCB over the space, with an optional expanding safe set.

    With a safe set the first proposal is the gentlest stimulus of the space:

    >>> search = BayesianSearch(ParameterSpace(), safe_radius=0.35, seed=1)
    >>> point = search.propose()
    >>> [float(v) for v in point[:2]], search.last_decision.reason
    ([2.0, 0.002], 'initial design point 1')
    >>> search.observe(point, 0.0)  # its score: nothing fired
    """

    name = "bayesian"

    def __init__(
        self,
        space: ParameterSpace,
        *,
        beta: float = 2.0,
        n_initial: int = 4,
        safe_radius: float | None = None,
        resolution: int = 31,  # candidates per axis: 0.13 V × 0.16 ms steps
        seed: int = 0,
    ) -> None:
        super().__init__(space)
        self.beta = beta
        self.n_initial = n_initial
        self.safe_radius = safe_radius
        self._rng = np.random.default_rng(seed)
        u = np.linspace(0.0, 1.0, resolution)
        uu, vv = np.meshgrid(u, u, indexing="ij")
        self._unit = np.column_stack([uu.ravel(), vv.ravel()])
        self.resolution = resolution
        self._posterior: tuple[np.ndarray, np.ndarray] | None = None
        # Hyper-parameters and the kernel algebra of the first _prepared_n
        # observations (see prepare).
        self._prepared: PreparedPosterior | None = None
        self._prepared_n = 0

    # Initial design: corners of a small Latin square, gentlest first; with a
    # safe radius, only the gentlest point (the safe seed) until the set grows.
    def _initial(self, k: int) -> np.ndarray:
        if self.safe_radius is not None:
            return np.array([0.0, 0.0]) if k == 0 else None  # type: ignore[return-value]
        design = np.array([[0.1, 0.1], [0.9, 0.9], [0.1, 0.9], [0.9, 0.1], [0.5, 0.5]])
        return design[k] if k < len(design) else None  # type: ignore[return-value]

    def _candidates(self) -> np.ndarray:
        if self.safe_radius is None or not self.observations.points:
            return np.ones(len(self._unit), dtype=bool)
        safe = [
            self.space.to_unit(p[0], p[1])  # type: ignore[arg-type]  # pair points
            for p, bad in zip(
                self.observations.points, self.observations.unsafe, strict=True
            )
            if not bad
        ]
        if not safe:
            return np.zeros(len(self._unit), dtype=bool)
        dist = np.min(
            np.linalg.norm(self._unit[:, None, :] - np.array(safe)[None], axis=2),
            axis=1,
        )
        return dist <= self.safe_radius + 1e-9

    def observe(
        self,
        point: Point,
        score: float,
        *,
        unsafe: bool = False,
        constraint: float = math.nan,
    ) -> None:
        """Add an observation; the posterior is recomputed at the next use."""
        super().observe(point, score, unsafe=unsafe, constraint=constraint)
        self._posterior = None

    def _xy(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        points = self.observations.points[:n]
        x = np.array([self.space.to_unit(p[0], p[1]) for p in points])  # type: ignore[arg-type]
        return x, np.array(self.observations.scores[:n])

    def prepare(self) -> None:
        """Fit the kernel's hyper-parameters to the observations so far, and the
        kernel algebra over the candidates that only depends on them.

        The slow step (~50 ms). A closed loop calls it while the next response
        is on its way; the decision after that response adds the one new
        observation to it (``PreparedPosterior``) in well under a millisecond.
        Without the call, ``decide`` fits the same thing itself, so decisions
        do not depend on whether or when it was called (replay gives the same).
        """
        n = len(self.observations.points)
        if n >= 2 and self._prepared_n != n:
            params = KernelParams.from_sklearn(self.fit(n).kernel_)
            x, y = self._xy(n)
            self._prepared = PreparedPosterior(x, self._unit, params, y)
            self._prepared_n = n

    def recommendation(self) -> Point | None:
        """The tested point of highest posterior mean (robust to one lucky,
        noisy observation, unlike the best observed score)."""
        obs = self.observations
        if len(obs.points) < 3:
            return super().recommendation()
        self._posterior_now()  # hyper-parameters for the current observations
        x, y = self._xy()
        assert self._prepared is not None  # _posterior_now() prepared it (n >= 3)
        mean, _ = gp_posterior(x, y, x, self._prepared.params)
        return obs.points[int(np.argmax(mean))]

    def _posterior_now(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over the candidates, hyper-parameters one observation old."""
        n = len(self.observations.points)
        x, y = self._xy()
        if n < 3:  # too few to hold one back: fit on all of them
            params = KernelParams.from_sklearn(self.fit(n).kernel_)
            return gp_posterior(x, y, self._unit, params)
        if self._prepared_n != n - 1:  # prepare() was not called: do its work now
            params = KernelParams.from_sklearn(self.fit(n - 1).kernel_)
            self._prepared = PreparedPosterior(x[:-1], self._unit, params, y[:-1])
            self._prepared_n = n - 1
        assert self._prepared is not None  # prepared with its _prepared_n
        return self._prepared.with_newest(x[-1], y)

    def fit(self, n: int | None = None) -> GaussianProcessRegressor:
        """Fit the GP (kernel hyper-parameters too) to the first ``n`` observations."""
        x, y = self._xy(n)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=(0.3, 0.3), length_scale_bounds=(0.05, 5.0), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x, y)
        return gp

    def decide(self) -> Decision:
        """The point the acquisition function prefers (or an initial one)."""
        pair = self.space.pairs[0]
        k = len(self.observations.points)
        if k < self.n_initial:
            start = self._initial(k)
            if start is not None:
                a, d = self.space.from_unit(*start)
                return Decision((a, d, pair), f"initial design point {k + 1}")
        allowed = self._candidates()
        if not allowed.any():
            a, d = self.space.from_unit(0.0, 0.0)
            return Decision((a, d, pair), "no safe point known: gentlest stimulus")
        mean, std = self._posterior_now()
        self._posterior = (mean, std)
        ucb = np.where(allowed, mean + self.beta * std, -np.inf)
        i = int(np.argmax(ucb))
        mean_i, std_i = float(mean[i]), float(std[i])
        a, d = self.space.from_unit(*self._unit[i])
        return Decision(
            (a, d, pair),
            f"max UCB (β={self.beta:g}) over {int(allowed.sum())} candidates",
            acquisition=mean_i + self.beta * std_i,
            mean=mean_i,
            std=std_i,
        )

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(amplitude_vpp grid, duration_s grid, mean, std) over the space."""
        if self._posterior is None:
            if len(self.observations.points) < 2:
                raise LookupError("fewer than two observations: no posterior yet")
            self._posterior = self._posterior_now()
        mean, std = self._posterior
        n = self.resolution
        amps = np.linspace(*self.space.amplitude_vpp, n)
        durs = np.linspace(*self.space.duration_s, n)
        return amps, durs, mean.reshape(n, n), std.reshape(n, n)

    def state(self) -> dict:
        """Adds the posterior mean and std on the grid (amplitude × duration)."""
        state = super().state()
        try:
            amps, durs, mean, std = self.posterior()
        except LookupError:
            return state
        state["posterior"] = {
            "amplitude_vpp": amps.tolist(),
            "duration_s": durs.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
        }
        return state


def replay_recorded(search: _Search, decisions: list[dict]) -> list[Decision]:
    """Replay a recording's ``optimiser`` events through a fresh search: before
    each decision, the observations it was made with (late ones first, as the
    loop learnt them); return the search's decisions in turn."""
    replayed = []
    for event in decisions:
        learnt = list(event.get("observed_late") or [])
        if event.get("observed"):
            learnt.append(event["observed"])
        for observation in learnt:
            search.observe(
                _recorded_point(search, observation["point"]),
                observation["score"],
                constraint=_or_nan(observation.get("constraint")),
            )
        search.propose()
        replayed.append(search.last_decision)
    return replayed  # type: ignore[return-value]


def replay(search: _Search, points: list[Point], scores: list[float]) -> list[Decision]:
    """Feed observations to a fresh search, one before each decision after the
    first; return its decisions in turn (``replay_recorded`` reads a recording)."""
    decisions = []
    for point, score in zip(points, scores, strict=True):
        search.propose()
        decisions.append(search.last_decision)
        search.observe(point, score)
    return decisions  # type: ignore[return-value]


def _recorded_point(search: _Search, values: list) -> Point:
    """A recorded point (a JSON list) as the search's own point type."""
    if isinstance(search.space, MixedSpace):
        return search.space.point(*values)
    return tuple(values)


def _or_nan(value) -> float:
    return math.nan if value is None else float(value)
