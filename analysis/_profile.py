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
from scipy import optimize

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]  # value and gradient

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

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            full[free] = x
            value, grad = self.objective(full)
            return value, grad[free]

        if not free:
            value, _ = self.objective(full)
            return Optimum(full.copy(), float(value))
        result = optimize.minimize(
            fun,
            full[free],
            jac=True,
            # TNC: a truncated Newton method in a box; for these few smooth
            # parameters ~5× faster than L-BFGS-B, to the same optimum.
            method="TNC",
            bounds=[self.bounds[k] for k in free],
            options={"ftol": 1e-12, "gtol": 1e-9, "maxfun": 2000},
        )
        full[free] = result.x
        return Optimum(full.copy(), float(result.fun))

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
