"""Maximum likelihood (or least squares) in a box, with profile intervals.

The fits in ``analysis.fits`` all come down to: minimise an objective ``f(p)``
over a box of parameters, then, for one parameter at a time, find the values
at which the objective minimised over the *other* parameters (the profile)
rises ``cutoff`` above its minimum. For a likelihood ``f`` is the negative log
likelihood and ``cutoff`` half the χ² quantile (the likelihood-ratio
interval); for least squares ``f`` is the sum of squares and ``cutoff`` the F
quantile times the residual variance (the profile-t interval of nonlinear
regression). When the profile stays under the cutoff all the way to the edge
of the box, that side of the interval is unbounded: the data do not limit the
parameter there, and the caller says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy
from scipy import optimize

try:  # TNC's own core, which optimize.minimize(method="TNC") calls (_tnc)
    from scipy.optimize._moduleTNC import tnc_minimize
except ImportError:  # pragma: no cover - a scipy without it: minimize
    tnc_minimize = None
# A private function: called (``_tnc``) with the arguments scipy 1.17's
# minimize passes it (scipy/optimize/_tnc.py), checked equal to minimize by
# tests/analysis/test_profile.py on that scipy; any other scipy goes through
# minimize (the same optimum, ~8 ms more per habituation fit).
if tuple(scipy.__version__.split(".")[:2]) != ("1", "17"):  # pragma: no cover
    tnc_minimize = None

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]  # value and gradient

# TNC's options (optimize.minimize's names): ftol, gtol, maxfun.
_FTOL, _GTOL, _MAXFUN = 1e-12, 1e-9, 2000

# Fractions of the way from the estimate to the box's edge where the profile is
# looked at first; the crossing is then found by Brent's method between two.
_SCAN = (0.01, 0.03, 0.08, 0.16, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True, slots=True)
class Optimum:
    """The minimum found: parameters and objective value."""

    p: np.ndarray
    value: float


class _BetterOptimum(Exception):
    def __init__(self, optimum: Optimum) -> None:
        self.optimum = optimum


class ProfileFit:
    """Minimise ``objective`` in ``bounds`` and profile any parameter.

    ``objective(p)`` returns the value and its gradient. ``bounds``
    are finite (low, high) per parameter; ``start`` is the first guess.
    """

    def __init__(
        self,
        objective: Objective,
        bounds: list[tuple[float, float]],
        start: np.ndarray,
    ) -> None:
        self.objective = objective
        self.bounds = [(float(lo), float(hi)) for lo, hi in bounds]
        self.best = self._minimise(np.clip(start, *np.array(self.bounds).T), None)

    def _minimise(self, start: np.ndarray, fixed: tuple[int, float] | None) -> Optimum:
        """The minimum over the free parameters (all but ``fixed``)."""
        if fixed is None:
            free = list(range(len(self.bounds)))
        else:
            free = [k for k in range(len(self.bounds)) if k != fixed[0]]
        full = np.array(start, dtype=float)
        if fixed is not None:
            full[fixed[0]] = fixed[1]

        # the free parameters' indices as an array, or (all free) a slice:
        # the same elements as the list, without converting it every call
        at: slice | np.ndarray = (
            slice(None) if fixed is None else np.array(free, dtype=np.intp)
        )

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            full[at] = x
            value, grad = self.objective(full)
            return value, grad[at]

        if not free:
            value, _ = self.objective(full)
            return Optimum(full.copy(), float(value))
        low = np.array([self.bounds[k][0] for k in free])
        high = np.array([self.bounds[k][1] for k in free])
        if tnc_minimize is not None and np.all(low < high):
            x, value = _tnc(fun, full[free], low, high)
        else:
            result = optimize.minimize(
                fun,
                full[free],
                jac=True,
                # TNC: a truncated Newton method in a box; for these few smooth
                # parameters ~5× faster than L-BFGS-B, to the same optimum.
                method="TNC",
                bounds=[self.bounds[k] for k in free],
                options={"ftol": _FTOL, "gtol": _GTOL, "maxfun": _MAXFUN},
            )
            x, value = result.x, float(result.fun)
        full[free] = x
        return Optimum(full.copy(), value)

    def profile(self, index: int, value: float, start: np.ndarray) -> Optimum:
        """The minimum with parameter ``index`` held at ``value``."""
        return self._minimise(start, (index, value))

    def interval(self, index: int, cutoff: float) -> tuple[float, float]:
        """Where the profile of parameter ``index`` rises ``cutoff`` above the
        minimum; ``-inf``/``inf`` on a side where it never does inside the box
        (the box's edge is not a bound the data set)."""
        return (self._side(index, cutoff, 0), self._side(index, cutoff, 1))

    def _side(self, index: int, cutoff: float, side: int) -> float:
        for _ in range(3):
            try:
                return self._walk(index, cutoff, side)
            except _BetterOptimum as better:
                # A profile found a lower minimum than the fit (a flat ridge
                # the first search stopped on): start again from there.
                self.best = self._minimise(better.optimum.p, None)
        return self._walk(index, cutoff, side)

    def _walk(self, index: int, cutoff: float, side: int) -> float:
        centre = float(self.best.p[index])
        edge = self.bounds[index][side]
        unbounded = -np.inf if side == 0 else np.inf
        if edge == centre:
            # The estimate is on the edge: the interval runs to it.
            return unbounded
        start = self.best.p.copy()
        last_inside = centre
        for fraction in _SCAN:
            v = centre + (edge - centre) * fraction
            opt = self.profile(index, v, start)
            rise = opt.value - self.best.value
            if rise < -1e-9 * max(1.0, abs(self.best.value)):
                raise _BetterOptimum(opt)
            if rise > cutoff:
                return self._crossing(index, cutoff, last_inside, v, start)
            last_inside, start = v, opt.p
        return unbounded

    def _crossing(
        self, index: int, cutoff: float, inside: float, outside: float, start
    ) -> float:
        def excess(v: float) -> float:
            return self.profile(index, v, start).value - self.best.value - cutoff

        span = abs(outside - inside)
        return float(
            optimize.brentq(excess, inside, outside, xtol=max(1e-9, span * 1e-4))
        )


def _tnc(
    fun: Objective, x0: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, float]:
    """``optimize.minimize(fun, x0, jac=True, method="TNC", bounds=..., options=
    {"ftol": _FTOL, "gtol": _GTOL, "maxfun": _MAXFUN})``'s ``x`` and ``fun``,
    bit for bit: the same core called with the same arguments, so it asks
    for the same points and gets the same values, and ends where that does.
    Without minimize's wrappers, which cost as much again as the objective
    per call (a habituation fit's ~200 calls: ~8 ms). Bounds finite and
    ``low < high`` (minimize takes a fixed parameter out of the problem)."""
    last: list = [None, 0.0]  # the point last evaluated, and its value

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = fun(x)
        last[0], last[1] = np.array(x), value
        return value, grad

    x = tnc_minimize(
        value_and_gradient, np.array(x0, dtype=float), low, high,
        np.array([]), np.array([]),  # scale and offset: TNC's own
        0, -1, _MAXFUN, -1.0, 0.0, 0.0, 0.0, _FTOL, -1.0, _GTOL, -1.0, None,
    )[3]  # (rc, nfev, nit, x, ...)  # fmt: skip
    # minimize reports the objective at x, from its memo when x is the point
    # it last evaluated
    if last[0] is None or not np.array_equal(x, last[0]):
        value_and_gradient(x)
    return x, float(last[1])
