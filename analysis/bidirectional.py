"""Propagation both ways from a stimulation site; maps and selectivity per site.

With many stimulation electrodes along the worm (issue 18) a giant-fibre spike
starts under the cathode and travels both ways: a recording pair at ``x`` (m
from the head end, the pairs' own positions) sees it at

    latency = t0 + |x − site| / v

a V in ``x`` whose apex is the site. ``fit_bidirectional`` fits that V to one
volley's per-pair latencies: the site (unless given, e.g. the configuration's
cathode) with a 95 % interval, the common speed, and one velocity per side —
*anterior-going* (pairs head-ward of the site; signed velocity < 0) and
*posterior-going* (tail-ward; > 0) — each with its interval, or "not
determined" and why when the data cannot support a number.

The V is fitted exactly, not on a grid: between two neighbouring pairs the
sides are fixed, so ``t = a + b·σ·x − c·σ`` (σ = ∓1 per side, ``b = 1/v``,
``c = site/v``) is linear least squares; the best of these and of the apex on
each pair is the global optimum. The site's interval is the profile
likelihood's (the sum of squares over a fine grid of sites, each a two-term
least squares).

``analyse_bidirectional`` runs the epoch analysis (``propagation``) about a
known site, or about candidate sites when it is unknown, and fits each volley.
``site_map``, ``fibre_selectivity`` and ``twitch_selectivity`` group
per-stimulus results by electrode configuration ("C3-A4", "C3-R").

Pure functions over arrays; SI units (m, s, m/s).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from analysis.propagation import (
    StimulusResponse,
    analyse_stimulus,
    fibre_names,
    first_volley_fields,
)
from analysis.volleys import EDGE_MARGIN_S, OVERLAP_S

ANTERIOR = "anterior"  # toward the head: smaller positions, signed velocity < 0
POSTERIOR = "posterior"  # toward the tail: larger positions, signed velocity > 0
TIMING_SD_S = 20e-6  # floor on one latency's SD (a fraction of a sample at 30 kHz)
MAX_RESIDUAL_S = 0.1e-3  # latencies further off a V than this do not lie on one
VELOCITY_RANGE_M_PER_S = (3.0, 60.0)
SITE_STEP_M = 0.1e-3  # the profile's grid for the site's interval
SITE_MARGIN_M = 0.05  # the profile looks this far beyond the outer pairs


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _pair(values: tuple[float, float]) -> list[float | None]:
    return [_num(values[0]), _num(values[1])]


NAN2 = (float("nan"), float("nan"))


@dataclass(frozen=True, slots=True)
class SideVelocity:
    """The spike's velocity on one side of the site."""

    side: str  # ANTERIOR or POSTERIOR
    velocity_m_per_s: float  # speed (> 0); NaN: not determined
    velocity_se_m_per_s: float
    velocity_ci95_m_per_s: tuple[float, float]
    n_pairs: int  # detected pairs on this side
    determined: bool
    reason: str = ""  # why not, when not determined

    @property
    def signed_velocity_m_per_s(self) -> float:
        """Velocity along the body axis: < 0 going to the head, > 0 to the tail."""
        sign = -1.0 if self.side == ANTERIOR else 1.0
        return sign * self.velocity_m_per_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return {
            "side": self.side,
            "velocity_m_per_s": _num(self.velocity_m_per_s),
            "signed_velocity_m_per_s": _num(self.signed_velocity_m_per_s),
            "velocity_se_m_per_s": _num(self.velocity_se_m_per_s),
            "velocity_ci95_m_per_s": _pair(self.velocity_ci95_m_per_s),
            "n_pairs": self.n_pairs,
            "determined": self.determined,
            "reason": self.reason or None,
        }


@dataclass(frozen=True, slots=True)
class BidirectionalFit:
    """One volley's V: site, common speed, and a velocity per side.

    ``determined``: the common speed is; ``site_determined``: the site is
    (bracketed by pairs on both sides). With ``site_given_m`` (the cathode's
    position) the velocities are measured from it and ``site_m`` is still the
    data's own estimate, to compare.
    """

    determined: bool
    reason: str  # why not, when not determined ("" otherwise)
    velocity_m_per_s: float  # the V's common speed; NaN: not determined
    velocity_se_m_per_s: float
    velocity_ci95_m_per_s: tuple[float, float]
    t0_s: float  # latency at the site
    residual_s: float  # SD of the latencies about the V (its dof)
    site_m: float  # estimated; NaN: not determined
    site_ci95_m: tuple[float, float]  # (−inf, x0] or [x_n, inf) when only bounded
    site_determined: bool
    site_reason: str
    site_given_m: float  # NaN: none given
    anterior: SideVelocity
    posterior: SideVelocity
    used: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    dof: int = 0  # latencies used − terms fitted (2, or 3 with an apex inside)

    @property
    def direction(self) -> str:
        """Which way the spike was seen to go: "anterior", "posterior", "both"
        (the sides of the site holding detected pairs), or "" (nothing
        determined)."""
        sides = [s.side for s in (self.anterior, self.posterior) if s.n_pairs]
        if not self.determined or not sides:
            return ""
        return sides[0] if len(sides) == 1 else "both"

    @property
    def signed_velocity_m_per_s(self) -> float:
        """The velocity along the body when the spike was seen going one way
        only (< 0 to the head, > 0 to the tail); NaN when both ways (see the
        sides) or not determined."""
        if self.direction == ANTERIOR:
            return -self.velocity_m_per_s
        if self.direction == POSTERIOR:
            return self.velocity_m_per_s
        return float("nan")

    def describe(self) -> str:
        """One line."""
        if not self.determined:
            return f"propagation not determined: {self.reason}"
        lo, hi = self.velocity_ci95_m_per_s
        text = f"v = {self.velocity_m_per_s:.1f} m/s [{lo:.1f}, {hi:.1f}]"
        if self.site_determined:
            a, b = self.site_ci95_m
            text += f", site {self.site_m * 1e3:.1f} mm [{a * 1e3:.1f}, {b * 1e3:.1f}]"
        else:
            text += f", site not determined ({self.site_reason})"
        return text + f", going {self.direction}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinite bounds become None)."""
        return {
            "determined": self.determined,
            "reason": self.reason or None,
            "velocity_m_per_s": _num(self.velocity_m_per_s),
            "velocity_se_m_per_s": _num(self.velocity_se_m_per_s),
            "velocity_ci95_m_per_s": _pair(self.velocity_ci95_m_per_s),
            "signed_velocity_m_per_s": _num(self.signed_velocity_m_per_s),
            "direction": self.direction or None,
            "t0_s": _num(self.t0_s),
            "residual_s": _num(self.residual_s),
            "site_m": _num(self.site_m),
            "site_ci95_m": _pair(self.site_ci95_m),
            "site_determined": self.site_determined,
            "site_reason": self.site_reason or None,
            "site_given_m": _num(self.site_given_m),
            "anterior": self.anterior.to_dict(),
            "posterior": self.posterior.to_dict(),
            "pairs_used": [int(i) for i in np.flatnonzero(self.used)],
            "pairs_excluded": [int(i) for i in np.flatnonzero(self.excluded)],
            "dof": self.dof,
        }


# --- the V fit ---------------------------------------------------------------


def _lstsq(design: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    coef, *_ = np.linalg.lstsq(design, t, rcond=None)
    r = t - design @ coef
    return coef, float(r @ r)


def _fixed_site(
    x: np.ndarray, t: np.ndarray, site: float
) -> tuple[float, float, float]:
    """(t0, slowness, SSE) of the V with its apex at ``site``."""
    d = np.abs(x - site)
    if np.ptp(d) == 0:
        return float(np.mean(t)), float("nan"), float(np.sum((t - t.mean()) ** 2))
    (t0, p), sse = _lstsq(np.column_stack([np.ones_like(d), d]), t)
    return float(t0), float(p), sse


def _free_site(x: np.ndarray, t: np.ndarray) -> tuple[float, float, float, float]:
    """(site, t0, slowness, SSE): the least-squares V over all sites.

    A site beyond the outer pairs fits exactly as well as the outer pair
    itself (only ``t0 − site/v`` is seen), so it is reported there.
    """
    u = np.unique(x)
    best = (float("nan"), float("nan"), float("nan"), float("inf"))
    for s in u:  # the apex on a pair
        t0, p, sse = _fixed_site(x, t, float(s))
        if p > 0 and sse < best[3]:
            best = (float(s), t0, p, sse)
    for k in range(u.size - 1):  # the apex between pairs k and k+1
        sigma = np.where(x <= u[k], -1.0, 1.0)
        design = np.column_stack([np.ones_like(x), sigma * x, -sigma])
        (a, b, c), sse = _lstsq(design, t)
        if b > 0 and u[k] < c / b < u[k + 1] and sse < best[3]:
            s = c / b
            best = (float(s), float(a), float(b), sse)
    return best


def _best_v(
    x: np.ndarray, t: np.ndarray, timing_sd_s: float
) -> tuple[float, float, float, float, int]:
    """(site, t0, slowness, SSE, dof): the least-squares V, or the straight
    line from an end pair when bending it inside the array is not worth its
    extra term.

    An apex on an end pair is the straight line (two terms); inside the array
    the site is a third, kept only when the better of the two lines misses
    by more than noise: χ² of one term at 95 % (3.84), or at 99.9 % (10.83)
    when one pair alone would stand on the short arm (a slow spike bends a
    V through one noisy end pair for little).
    """
    site, t0, p, sse = _free_site(x, t)
    if not x.min() < site < x.max():
        return site, t0, p, sse, x.size - 2
    var = max(timing_sd_s**2, sse / (x.size - 3) if x.size > 3 else 0.0)
    ends = [(e, *_fixed_site(x, t, e)) for e in (x.min(), x.max())]
    e, t0_e, p_e, sse_e = min(
        (c for c in ends if c[2] > 0), key=lambda c: c[3], default=ends[0]
    )
    short_arm = min(int((x < site).sum()), int((x > site).sum()))
    limit = 3.841 if short_arm >= 2 else 10.83
    if p_e > 0 and sse_e - sse <= limit * var:
        return float(e), t0_e, p_e, sse_e, x.size - 2
    return site, t0, p, sse, x.size - 3


def _profile(x: np.ndarray, t: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """The V's least-squares SSE with its apex at each of ``sites`` (vectorised
    two-term least squares; +inf where the slope is not positive)."""
    d = np.abs(x[None, :] - sites[:, None])  # (n_sites, n)
    n = x.size
    dm = d.mean(axis=1, keepdims=True)
    tm = t.mean()
    sdd = np.sum((d - dm) ** 2, axis=1)
    sdt = np.sum((d - dm) * (t - tm), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sdt / sdd
        sse = np.sum((t - tm) ** 2) - p * sdt
    ok = (sdd > 0) & (p > 0)
    return (
        np.where(ok, np.maximum(sse, 0.0), np.inf) if n else np.full(sites.size, np.inf)
    )


def _sigma_and_quantile(
    sse: float, dof: int, timing_sd_s: float
) -> tuple[float, float]:
    """The latency SD to use (the residuals' or the floor, the larger) and the
    95 % two-sided quantile that goes with it (Student's t or normal)."""
    if dof > 0 and np.sqrt(sse / dof) > timing_sd_s:
        return float(np.sqrt(sse / dof)), float(stats.t.ppf(0.975, dof))
    return timing_sd_s, 1.959963984540054


def _speed_interval(p: float, se_p: float, z: float) -> tuple[float, float]:
    lo_p, hi_p = p - z * se_p, p + z * se_p
    return (float(1.0 / hi_p), float(1.0 / lo_p) if lo_p > 0 else float("inf"))


def _side(
    side: str,
    x: np.ndarray,
    t: np.ndarray,
    site: float,
    *,
    min_pairs: int,
    timing_sd_s: float,
    velocity_range: tuple[float, float],
    monotone_tolerance_s: float,
) -> SideVelocity:
    """One side's own line through its latencies against distance from the site."""
    n = x.size
    if n < min_pairs:
        return SideVelocity(
            side, float("nan"), float("nan"), NAN2, n, False,
            f"{n} detected pair(s) on the {side} side (needs {min_pairs})",
        )  # fmt: skip
    d = np.abs(x - site)
    order = np.argsort(d, kind="stable")
    drops = -np.diff(t[order])
    if drops.size and drops.max() > monotone_tolerance_s:
        return SideVelocity(
            side, float("nan"), float("nan"), NAN2, n, False,
            f"latencies fall with distance by {drops.max() * 1e3:.3f} ms on the "
            f"{side} side (noise allows {monotone_tolerance_s * 1e3:.3f})",
        )  # fmt: skip
    if np.ptp(d) == 0:
        return SideVelocity(
            side, float("nan"), float("nan"), NAN2, n, False,
            f"the {side} pairs are all at one distance from the site",
        )  # fmt: skip
    (_, slope), sse = _lstsq(np.column_stack([np.ones_like(d), d]), t)
    p = float(slope)
    sigma, z = _sigma_and_quantile(sse, n - 2, timing_sd_s)
    se_p = sigma / np.sqrt(np.sum((d - d.mean()) ** 2))
    if p - z * se_p <= 0:
        return SideVelocity(
            side, float("nan"), float("nan"), NAN2, n, False,
            f"latencies do not rise with distance beyond noise on the {side} side",
        )  # fmt: skip
    v = 1.0 / p
    if not velocity_range[0] <= v <= velocity_range[1]:
        return SideVelocity(
            side, float("nan"), float("nan"), NAN2, n, False,
            f"{side} velocity {v:.3g} m/s outside {velocity_range[0]:g}–"
            f"{velocity_range[1]:g} m/s",
        )  # fmt: skip
    return SideVelocity(
        side, float(v), float(se_p / p**2), _speed_interval(p, se_p, z), n, True
    )


def _check_inputs(
    positions_m: ArrayLike, latencies_s: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = np.asarray(positions_m, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("positions_m must be numbers (m)") from None
    try:
        t = np.array(
            [np.nan if v is None else v for v in np.atleast_1d(latencies_s)],
            dtype=float,
        )
    except (TypeError, ValueError):
        raise ValueError("latencies_s must be numbers (s) or None/NaN") from None
    if x.ndim != 1 or t.shape != x.shape:
        raise ValueError(
            "positions_m and latencies_s must be one value per pair; got "
            f"{x.shape} and {t.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("positions_m must be finite (m from the head end)")
    return x, t


def fit_bidirectional(
    positions_m: ArrayLike,
    latencies_s: ArrayLike,
    *,
    site_m: float | None = None,
    timing_sd_s: float = TIMING_SD_S,
    max_residual_s: float = MAX_RESIDUAL_S,
    min_pairs_per_side: int = 2,
    velocity_range_m_per_s: tuple[float, float] = VELOCITY_RANGE_M_PER_S,
    exclude_outlier: bool = True,
) -> BidirectionalFit:
    """Fit ``latency = t0 + |x − site| / v`` to one volley's arrivals.

    ``positions_m``: each pair's position (m from the head end, any order);
    ``latencies_s``: its arrival (s after the pulse), NaN or None where the
    spike was not detected. ``site_m``: the known site (the cathode's
    position), or None to estimate it. ``timing_sd_s``: the least SD assumed
    for one latency (the residuals' is used when larger).

    Not determined (``determined`` False, NaN values, a ``reason``): fewer than
    3 detected pairs; latencies off the V by more than ``max_residual_s`` (after
    leaving out at most one outlier when ≥ 5 pairs remain); a speed outside
    ``velocity_range_m_per_s`` or not above zero beyond noise. The site is not
    determined when the pairs do not bracket it (the latencies only rise, or
    only fall, along the array: it is at or beyond the first pair), reported
    with its one-sided bound, or bracket it with fewer than
    ``min_pairs_per_side`` on a side. A side's velocity needs ``min_pairs_per_side``
    pairs on that side whose latencies rise with distance beyond noise and
    never fall from one pair to the next by more than 3·√2·``timing_sd_s``.

    >>> x = np.array([20.0, 40.0, 60.0, 80.0]) * 1e-3  # four pairs, m
    >>> fit = fit_bidirectional(x, 0.4e-3 + np.abs(x - 0.05) / 25.0)
    >>> round(fit.site_m * 1e3, 6), round(fit.velocity_m_per_s, 6), fit.direction
    (50.0, 25.0, 'both')
    >>> fit.posterior.signed_velocity_m_per_s, fit.anterior.signed_velocity_m_per_s
    (25.0..., -25.0...)
    >>> fit_bidirectional(x, [1e-3, np.nan, np.nan, 2e-3]).reason
    '2 detected pair(s) (needs 3)'
    """
    x_all, t_all = _check_inputs(positions_m, latencies_s)
    if site_m is not None and not np.isfinite(site_m):
        raise ValueError("site_m must be a finite position (m) or None")
    given = float("nan") if site_m is None else float(site_m)
    detected = np.isfinite(t_all)
    excluded = np.zeros_like(detected)
    n = int(detected.sum())

    def failed(
        reason: str, used: np.ndarray, site_reason: str = ""
    ) -> BidirectionalFit:
        empty = [
            SideVelocity(s, float("nan"), float("nan"), NAN2, 0, False, reason)
            for s in (ANTERIOR, POSTERIOR)
        ]
        return BidirectionalFit(
            False, reason, float("nan"), float("nan"), NAN2, float("nan"),
            float("nan"), float("nan"), NAN2, False, site_reason or reason, given,
            empty[0], empty[1], used, excluded,
        )  # fmt: skip

    if n < 3:
        return failed(f"{n} detected pair(s) (needs 3)", detected)
    if np.unique(x_all[detected]).size < 2:
        return failed("the detected pairs are all at one position", detected)

    def fit(use: np.ndarray) -> tuple[float, float, float, float, int]:
        """(site, t0, slowness, SSE, dof) of the V through the pairs ``use``."""
        x, t = x_all[use], t_all[use]
        if site_m is None:
            return _best_v(x, t, timing_sd_s)
        t0, p, sse = _fixed_site(x, t, given)
        return given, t0, p, sse, x.size - 2

    used = detected.copy()
    site, t0, p, sse, dof = fit(used)
    resid_sd = np.sqrt(sse / dof) if dof > 0 else 0.0
    if exclude_outlier and used.sum() >= 5 and resid_sd > max_residual_s:
        # One pair timed on something else (another fibre's spike, an artifact's
        # remains): the V through the others, if it then fits.
        trials = []
        for i in np.flatnonzero(used):
            trial = used.copy()
            trial[i] = False
            trials.append((fit(trial)[3], i, trial))
        _, worst, trial = min(trials, key=lambda r: r[0])
        site, t0, p, sse, dof = fit(trial)
        used = trial
        excluded[worst] = True
        resid_sd = np.sqrt(sse / dof) if dof > 0 else 0.0
    x, t = x_all[used], t_all[used]
    if not np.isfinite(p) or p <= 0:
        return failed("the latencies do not rise away from any site", used)
    if dof < 1:
        return failed(
            f"{x.size} pairs about a site inside the array leave nothing to test "
            "the V with (needs 4, or the site given)",
            used,
        )
    if resid_sd > max_residual_s:
        return failed(
            f"latencies off the V by {resid_sd * 1e3:.3f} ms SD "
            f"(at most {max_residual_s * 1e3:.3f})",
            used,
        )
    sigma, z = _sigma_and_quantile(sse, dof, timing_sd_s)
    # Site: the profile likelihood over a fine grid (its interval), and its
    # bracket by pairs on both sides.
    lo, hi = float(x.min()), float(x.max())
    grid = np.arange(lo - SITE_MARGIN_M, hi + SITE_MARGIN_M + SITE_STEP_M, SITE_STEP_M)
    prof = _profile(x, t, grid)
    free_site, _, _, free_sse, _ = (
        _best_v(x, t, timing_sd_s) if site_m is not None else (site, t0, p, sse, dof)
    )
    within = (prof - free_sse) <= (z * sigma) ** 2
    ci = _connected_interval(grid, within, free_site)
    open_head, open_tail = ci[0] <= grid[0], ci[1] >= grid[-1]
    ci = (-np.inf if open_head else ci[0], np.inf if open_tail else ci[1])
    arms = (int((x < free_site).sum()), int((x > free_site).sum()))
    site_ok = not (open_head or open_tail) and min(arms) >= min_pairs_per_side
    site_est = float(free_site) if site_ok else float("nan")
    if site_ok:
        site_reason = ""
    elif not (open_head or open_tail):
        side = ANTERIOR if arms[0] < arms[1] else POSTERIOR
        site_reason = (
            f"{min(arms)} detected pair(s) on the {side} side of the apex (needs "
            f"{min_pairs_per_side}): the site would rest on equal speeds both ways"
        )
    elif open_head and open_tail:
        site_reason = "the latencies place no bound on the site"
    else:
        # Only rising (or falling) along the array, within noise: the apex is
        # at the end pair or anywhere beyond it.
        end = "head" if open_head else "tail"
        site_reason = (
            f"the latencies only {'rise' if open_head else 'fall'} along the "
            f"array within noise: the site may be at or beyond the {end}-end pair"
        )
    # Common speed: the Jacobian of the V at the optimum (t0, p and, when
    # the apex is estimated inside the array, the site).
    d = np.abs(x - site)
    cols = [np.ones_like(d), d]
    if site_m is None and lo < site < hi:
        cols.append(-p * np.sign(x - site))
    jac = np.column_stack(cols)
    cov = np.linalg.pinv(jac.T @ jac) * sigma**2
    se_p = float(np.sqrt(max(cov[1, 1], 0.0)))
    v = 1.0 / p
    if p - z * se_p <= 0:
        return failed("latencies do not rise with distance beyond noise", used)
    if not velocity_range_m_per_s[0] <= v <= velocity_range_m_per_s[1]:
        return failed(
            f"velocity {v:.3g} m/s outside {velocity_range_m_per_s[0]:g}–"
            f"{velocity_range_m_per_s[1]:g} m/s",
            used,
        )
    # Each side's own velocity, from the site the velocities are measured from
    # (the given one, else the estimate; a pair on the apex belongs to both).
    # A site the pairs do not bracket is taken at the end it may lie beyond.
    apex = given if site_m is not None else site
    if site_m is None and not site_ok:
        apex = lo if open_head and not open_tail else hi if open_tail else site
    on_apex = np.isclose(x, apex, rtol=0, atol=1e-9)
    kw = {
        "min_pairs": min_pairs_per_side,
        "timing_sd_s": timing_sd_s,
        "velocity_range": velocity_range_m_per_s,
        "monotone_tolerance_s": 3.0 * np.sqrt(2.0) * timing_sd_s,
    }
    ant = (x < apex) | on_apex
    post = (x > apex) | on_apex
    anterior = _side(ANTERIOR, x[ant], t[ant], apex, **kw)
    posterior = _side(POSTERIOR, x[post], t[post], apex, **kw)
    # A side that only holds the apex pair has no pairs of its own.
    if not (x < apex).any():
        anterior = SideVelocity(ANTERIOR, float("nan"), float("nan"), NAN2, 0, False,
                                "no detected pair on the anterior side")  # fmt: skip
    if not (x > apex).any():
        posterior = SideVelocity(POSTERIOR, float("nan"), float("nan"), NAN2, 0, False,
                                 "no detected pair on the posterior side")  # fmt: skip
    return BidirectionalFit(
        determined=True,
        reason="",
        velocity_m_per_s=float(v),
        velocity_se_m_per_s=float(se_p / p**2),
        velocity_ci95_m_per_s=_speed_interval(p, se_p, z),
        t0_s=float(t0),
        residual_s=float(resid_sd),
        site_m=site_est,
        site_ci95_m=(float(ci[0]), float(ci[1])),
        site_determined=site_ok,
        site_reason=site_reason,
        site_given_m=given,
        anterior=anterior,
        posterior=posterior,
        used=used,
        excluded=excluded,
        dof=dof,
    )


def _connected_interval(
    grid: np.ndarray, inside: np.ndarray, centre: float
) -> tuple[float, float]:
    """The run of ``inside`` around ``centre`` as (first, last) grid value."""
    k = int(np.argmin(np.abs(grid - centre)))
    if not inside[k]:
        return (float(centre), float(centre))
    outside = np.flatnonzero(~inside)
    left = outside[outside < k]
    right = outside[outside > k]
    a = int(left[-1]) + 1 if left.size else 0
    b = int(right[0]) - 1 if right.size else grid.size - 1
    return float(min(grid[a], centre)), float(max(grid[b], centre))


# --- from an epoch -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BidirectionalResponse:
    """One stimulus analysed about a site: the volleys and each one's V."""

    response: StimulusResponse  # its latencies are per pair, as everywhere
    analysed_about_m: float  # the site the volleys were searched about
    fits: tuple[BidirectionalFit, ...]  # one per volley, in its order
    # Whether any pair is far enough from the site for the two giant fibres'
    # spikes to arrive OVERLAP_S apart (``separation_distance_m``): when not,
    # and both fired, they merged on every pair and no volley times either.
    fibres_separable: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The response's JSON with ``analysed_about_m``, ``fibres_separable``
        and ``bidirectional`` (one fit per volley)."""
        out = self.response.to_dict()
        out["analysed_about_m"] = float(self.analysed_about_m)
        out["fibres_separable"] = bool(self.fibres_separable)
        out["bidirectional"] = [f.to_dict() for f in self.fits]
        return out


def separation_distance_m(
    fast_m_per_s: float = 30.0,
    slow_m_per_s: float = 15.0,
    overlap_s: float = OVERLAP_S,
) -> float:
    """How far from the site two spikes that start together at these speeds
    (the MGF's and LGF's, nominally) arrive ``overlap_s`` apart: nearer, they
    merge on a pair.

    >>> round(separation_distance_m() * 1e3, 1)  # mm, for 30 and 15 m/s
    36.0
    """
    return float(overlap_s / (1.0 / slow_m_per_s - 1.0 / fast_m_per_s))


def _separable(x: np.ndarray, site: float) -> bool:
    return bool(np.any(np.abs(x - site) >= separation_distance_m()))


def candidate_sites_m(pair_positions_m: ArrayLike) -> np.ndarray:
    """Where to look for an unknown site: each pair, each midpoint between
    neighbours, and 10 mm beyond either end pair."""
    u = np.unique(np.asarray(pair_positions_m, dtype=float))
    mids = (u[:-1] + u[1:]) / 2
    return np.unique(np.concatenate([[u[0] - 0.01], u, mids, [u[-1] + 0.01]]))


def analyse_bidirectional(
    epoch_uv: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    duration_s: float | None,
    pair_positions_m: ArrayLike,
    site_m: float | None = None,
    candidates_m: ArrayLike | None = None,
    fit_options: dict[str, Any] | None = None,
    fit: bool = True,
    **analyse_options: Any,
) -> BidirectionalResponse:
    """``propagation.analyse_stimulus`` about a site, and each volley's V.

    ``pair_positions_m``: the pairs' positions (m from the head end).
    ``site_m``: the known site (the cathode's position): the volleys are
    searched as ``t0 + |x − site| / v`` and fitted with the site given. None:
    the epoch is analysed about each of ``candidates_m`` (default
    ``candidate_sites_m``), the one whose volleys reach the most pairs with
    the least residual kept; when its first volley's V places the site, the
    epoch is analysed once more about that estimate. A pair where two
    volleys arrive within ``OVERLAP_S`` times neither
    (``separated_latencies``). ``fit_options`` go to ``fit_bidirectional``,
    the rest to ``analyse_stimulus``. ``fit`` False (with ``site_m`` only):
    no V fitted (``fits`` empty), for a caller that fits them itself, as
    ``site_record`` does (the online analysis: each fit costs ~0.7 ms).
    """
    x = np.asarray(pair_positions_m, dtype=float)
    fit_kw = dict(fit_options or {})

    def about(site: float) -> StimulusResponse:
        return analyse_stimulus(
            epoch_uv, fs_hz=fs_hz, onset=onset, duration_s=duration_s,
            positions_m=x - site, **analyse_options,
        )  # fmt: skip

    def fits_of(r: StimulusResponse, known: float | None) -> list[BidirectionalFit]:
        lat = separated_latencies(r)
        return [fit_bidirectional(x, t, site_m=known, **fit_kw) for t in lat]

    if site_m is not None:
        response = about(float(site_m))
        fits = tuple(fits_of(response, float(site_m))) if fit else ()
        return BidirectionalResponse(
            response, float(site_m), fits, _separable(x, float(site_m))
        )
    sites = candidate_sites_m(x) if candidates_m is None else np.asarray(candidates_m)

    step = float(np.max(np.diff(sites))) if sites.size > 1 else 0.02
    tolerance = step / 2 + 1e-3

    def score(site: float, r: StimulusResponse) -> tuple[int, int, int, float]:
        # Degrees of freedom left by the volleys whose V the data determine
        # with a site within reach of the one searched about (a V bent
        # through another fibre's arrival or an artifact's remains spends one
        # on its apex), then all pairs, then the fewer apexes (the simpler
        # account), then the smaller residual.
        fits = fits_of(r, None)
        ok = [
            f
            for f in fits
            if f.determined
            and f.site_ci95_m[0] - tolerance <= site <= f.site_ci95_m[1] + tolerance
        ]
        dof = sum(f.dof for f in ok)
        apexes = sum(int(f.used.sum()) - f.dof - 2 for f in ok)
        resid = sum(f.residual_s for f in ok)
        return dof, sum(v.n_pairs for v in r.volleys), -apexes, -resid

    tried = [
        (score(float(s), r), float(s), r) for s in sites for r in [about(float(s))]
    ]
    best, site, response = max(tried, key=lambda item: item[0])
    if response.volleys:
        first = fits_of(response, None)[0]
        if first.site_determined:
            again = about(first.site_m)
            if score(first.site_m, again) >= best:
                site, response = first.site_m, again
    fits = tuple(fits_of(response, None))
    where = fits[0].site_m if fits and fits[0].site_determined else float(site)
    return BidirectionalResponse(response, float(site), fits, _separable(x, where))


def clear_of_artifact(response: StimulusResponse) -> list[float] | None:
    """Per pair, when the pulse and what it blanked are over (s from the
    pulse's start, as the latencies), or None when the pulse was not found."""
    q = response.quality
    if q is None or not np.isfinite(q.pulse_duration_s):
        return None
    return [float(q.pulse_duration_s + s) for s in np.asarray(q.blanked_s, float)]


def site_record(
    b: BidirectionalResponse,
    site_m: float | None,
    pair_positions_m: ArrayLike,
    mgf_min_velocity_m_per_s: float = 20.0,
) -> dict[str, Any]:
    """One stimulus's analysis about its site, JSON-ready: what the offline
    pipeline stores as ``stimuli[].bidirectional`` and the online analysis
    as a result's ``bidirectional``.

    Each volley's V is fitted again without its arrivals timed before the
    pulse and its blanking ended (on the artifact's remains: on the simulated
    rig ~10 mm from a mid-body site, 0.15–0.25 ms early, which bends each
    side's line into a confident wrong velocity). A volley with fewer than
    ``MIN_CLEAR_PAIRS`` arrivals after that and the pulse edge's margin
    (``volleys.EDGE_MARGIN_S``, 0.3 ms) is ``on_artifact``: a line
    through the pulse's edges and remains near the site (on the simulated
    rig, a "55 m/s MGF" at 0.1–0.95 ms on the pairs nearest a mid-body site
    during a 1 ms pulse), not a fibre; nor is a volley neither clean nor with
    its V determined beside one that is (``_counted``). Those have
    ``counted`` false: left out of ``site_map`` and of the online result's
    ``volleys``, and the others are named again without them
    (``propagation.fibre_names``: a lone LGF beside one would otherwise be
    called the MGF, the faster of two)."""
    x = np.asarray(pair_positions_m, dtype=float)
    latencies = separated_latencies(b.response)
    clear = clear_of_artifact(b.response)
    fits = []
    for t in latencies:
        t = t.copy()
        if clear is not None:
            t[np.isfinite(t) & (t <= np.asarray(clear))] = np.nan
        fits.append(fit_bidirectional(x, t, site_m=site_m).to_dict())
    n_clear = []
    for v in b.response.volleys:
        t = np.asarray(v.latency_s, dtype=float)
        # clear of the pulse's end too: a line through the transient there
        # (on the simulated rig ~1.01 ms after a 1 ms pulse on pairs 60–80 mm
        # from a tail site) is the artifact's
        late = (
            np.isfinite(t) if clear is None else t > np.asarray(clear) + EDGE_MARGIN_S
        )
        n_clear.append(int(np.sum(np.isfinite(t) & late)))
    counted = _counted(b.response.volleys, n_clear, fits)
    names = _names_of_counted(b.response.volleys, counted, mgf_min_velocity_m_per_s)
    return {
        "artifact_end_s": clear,
        "site_m": site_m,
        "analysed_about_m": float(b.analysed_about_m),
        "fibres_separable": bool(b.fibres_separable),
        "volleys": [
            {
                "fibre": name,
                "clean": bool(v.clean),
                "latency_s": [None if not np.isfinite(t) else float(t) for t in lat],
                "pairs_clear_of_artifact": n,
                "on_artifact": n < MIN_CLEAR_PAIRS,
                "counted": ok,
            }
            for v, lat, n, name, ok in zip(
                b.response.volleys, latencies, n_clear, names, counted, strict=True
            )
        ],
        "fits": fits,
    }


def _counted(
    volleys: Sequence[Any], n_clear: list[int], fits: list[dict[str, Any]]
) -> list[bool]:
    """Which volleys count as a fibre's: not on the artifact, and, when any
    other is clean or has its V determined, clean or determined itself.

    A second volley that is neither, beside one that is, has been a line
    through noise or a spike's own later phase on the simulated rig (6–55
    m/s, 1–3 pairs of its V left): ranked by speed it renamed the real
    volley (a lone LGF called the MGF, the faster of two). Where no volley is
    either (four pairs ~10 and 30 mm from a mid-body site: the near arrivals
    on the artifact), all are kept, named by speed as the first wave names a
    stimulus's volleys.
    """
    kept = [n >= MIN_CLEAR_PAIRS for n in n_clear]
    supported = [
        k and (bool(v.clean) or bool(f["determined"]))
        for v, k, f in zip(volleys, kept, fits, strict=True)
    ]
    return supported if any(supported) else kept


def _names_of_counted(
    volleys: Sequence[Any], counted: list[bool], mgf_min_velocity_m_per_s: float
) -> list[str]:
    """Each volley's fibre: the counted ones named by speed among themselves
    (they are sorted fastest first), the others keeping their own."""
    kept = [i for i, ok in enumerate(counted) if ok]
    names = [v.fibre for v in volleys]
    speeds = [volleys[i].conduction_velocity_m_per_s for i in kept]
    for i, name in zip(
        kept, fibre_names(speeds, mgf_min_velocity_m_per_s), strict=True
    ):
        names[i] = name
    return names


# A volley needs this many arrivals after the pulse and its blanking ended to
# be a fibre's, not the artifact's: two place a line from a known site (its t0
# and speed). Not three: with the simulated rig's four pairs a mid-body site's
# two nearest pairs (~10 mm) see the LGF at the pulse's end, and its two far
# ones are all that is clear of it.
MIN_CLEAR_PAIRS = 2


def without_artifact_volleys(
    response: StimulusResponse, record: dict[str, Any]
) -> StimulusResponse:
    """``response`` with the volleys ``site_record`` does not count (on the
    artifact, or unsupported beside a supported one: ``_counted``) moved to
    ``suspect_volleys`` (shown, never counted), the rest named as the record
    names them, and its headline fields (``responded``, per-pair latency and
    amplitude, velocity) from the first volley left."""
    flags = [not counted(v) for v in record["volleys"]]
    if not any(flags):
        return response
    named = [
        replace(v, fibre=str(r["fibre"]))
        for v, r in zip(response.volleys, record["volleys"], strict=True)
    ]
    kept = [v for v, bad in zip(named, flags, strict=True) if not bad]
    moved = [v for v, bad in zip(named, flags, strict=True) if bad]
    return replace(
        response,
        **first_volley_fields(kept, response.latency_s.shape[0]),
        volleys=tuple(kept),
        suspect_volleys=(*response.suspect_volleys, *moved),
    )


# A site head-ward of every recording pair and this near the head end is the
# classic head pair (4–12 mm on the simulated rig and the teaching rigs): the
# pairs' positions from the head end stand for their distances from it, as
# the first wave's analysis takes them. The ≤ 10 mm offset only moves a
# volley's t0, by ≤ 0.67 ms at the LGF's 15 m/s, against a utilisation time
# of ~0.5 ms: within the volley search's t0 range (−0.5–5 ms).
HEAD_END_M = 0.010


def at_head_end(site_m: float | None, pair_positions_m: ArrayLike) -> bool:
    """Whether a stimulus from ``site_m`` is analysed as from the head end
    (pair positions as distances, spikes one way): the site is unknown, or
    head-ward of every pair and within ``HEAD_END_M`` of the head end.

    >>> pairs = [0.0375, 0.0575, 0.0775, 0.0975]
    >>> at_head_end(None, pairs), at_head_end(0.004, pairs), at_head_end(0.067, pairs)
    (True, True, False)
    >>> at_head_end(0.025, pairs)  # before the pairs, yet 25 mm from the head
    False
    """
    if site_m is None:
        return True
    x = np.asarray(pair_positions_m, dtype=float)
    return bool(site_m <= x.min() and site_m <= HEAD_END_M)


def separated_latencies(
    response: StimulusResponse, overlap_s: float = OVERLAP_S
) -> list[np.ndarray]:
    """Each volley's latencies, NaN where another volley's arrival on the
    same pair is within ``overlap_s``: near the site two fibres' spikes
    arrive together and merge, and the merged spike's time is neither's
    (a V through it is bent toward the other fibre's speed)."""
    lat = [np.array(v.latency_s, dtype=float) for v in response.volleys]
    out = [t.copy() for t in lat]
    for i, a in enumerate(lat):
        for j, b in enumerate(lat):
            if i != j:
                with np.errstate(invalid="ignore"):
                    out[i][np.abs(a - b) < overlap_s] = np.nan
    return out


# --- selectivity and maps per configuration ------------------------------------


def configuration_key(configuration: str) -> tuple:
    """Sort key: "C2-A3" before "C2-R" before "C10-A0"; other text last."""
    text = str(configuration).strip().upper()
    parts = text.split("-")
    if len(parts) == 2 and parts[0][:1] == "C" and parts[0][1:].isdigit():
        anode = parts[1]
        if anode == "R":
            return (0, int(parts[0][1:]), 1, 0, text)
        if anode[:1] == "A" and anode[1:].isdigit():
            return (0, int(parts[0][1:]), 0, int(anode[1:]), text)
    return (1, 0, 0, 0, text)


def _groups(configurations: Sequence[str]) -> dict[str, np.ndarray]:
    keys = [str(c) for c in configurations]
    rows: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        rows[k].append(i)
    return {k: np.array(rows[k]) for k in sorted(rows, key=configuration_key)}


def proportion_ci95(k: int, n: int) -> tuple[float, float]:
    """Clopper–Pearson (exact) 95 % interval of ``k`` successes in ``n``.

    >>> [round(v, 4) for v in proportion_ci95(0, 10)]
    [0.0, 0.3085]
    """
    if n <= 0:
        return NAN2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return lo, hi


@dataclass(frozen=True, slots=True)
class FibreSelectivity:
    """How often one configuration's stimuli recruited one giant fibre alone."""

    configuration: str
    n: int  # stimuli
    lgf_without_mgf: float  # fraction with an LGF volley and no MGF volley
    lgf_without_mgf_ci95: tuple[float, float]
    mgf_without_lgf: float
    mgf_without_lgf_ci95: tuple[float, float]
    either: float  # fraction with any volley

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "configuration": self.configuration,
            "n": self.n,
            "lgf_without_mgf": _num(self.lgf_without_mgf),
            "lgf_without_mgf_ci95": _pair(self.lgf_without_mgf_ci95),
            "mgf_without_lgf": _num(self.mgf_without_lgf),
            "mgf_without_lgf_ci95": _pair(self.mgf_without_lgf_ci95),
            "either": _num(self.either),
        }


def fibre_selectivity(
    configurations: Sequence[str], mgf: ArrayLike, lgf: ArrayLike
) -> tuple[FibreSelectivity, ...]:
    """Per configuration: the fraction of stimuli that evoked the LGF without
    the MGF (and the MGF without the LGF), each with its exact 95 % interval.

    ``mgf``, ``lgf``: per stimulus, whether that fibre's volley was seen.

    >>> s, = fibre_selectivity(["C6-R"] * 4, [0, 0, 1, 0], [1, 1, 1, 0])
    >>> s.configuration, s.n, s.lgf_without_mgf, s.mgf_without_lgf
    ('C6-R', 4, 0.5, 0.0)
    """
    m = np.asarray(mgf, dtype=bool)
    g = np.asarray(lgf, dtype=bool)
    if not m.shape == g.shape == (len(configurations),):
        raise ValueError(
            "configurations, mgf and lgf must be one per stimulus; got "
            f"{len(configurations)}, {m.shape}, {g.shape}"
        )
    out = []
    for config, rows in _groups(configurations).items():
        n = rows.size
        lgf_only = int(np.sum(g[rows] & ~m[rows]))
        mgf_only = int(np.sum(m[rows] & ~g[rows]))
        out.append(
            FibreSelectivity(
                config, n, lgf_only / n, proportion_ci95(lgf_only, n),
                mgf_only / n, proportion_ci95(mgf_only, n),
                float(np.mean(m[rows] | g[rows])),
            )
        )  # fmt: skip
    return tuple(out)


@dataclass(frozen=True, slots=True)
class TwitchSelectivity:
    """Where one configuration's twitch was: each region against the others."""

    configuration: str
    n: int  # stimuli with every region measured
    region_mean_mm: np.ndarray  # mean |peak displacement| per region
    # mean |peak| of region k / mean over the other regions of theirs; NaN
    # where the others did not move or n < 3
    ratio: np.ndarray
    ratio_ci95: np.ndarray  # (n_regions, 2), bootstrap percentile
    strongest_region: int  # -1: not determined

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "configuration": self.configuration,
            "n": self.n,
            "region_mean_mm": [_num(v) for v in self.region_mean_mm],
            "ratio": [_num(v) for v in self.ratio],
            "ratio_ci95": [_pair((a, b)) for a, b in self.ratio_ci95],
            "strongest_region": self.strongest_region,
        }


def _ratios(peaks: np.ndarray) -> np.ndarray:
    """Region k's mean over the others' mean, for (…, n, R) samples."""
    mean = peaks.mean(axis=-2)  # (…, R)
    r = mean.shape[-1]
    others = (mean.sum(axis=-1, keepdims=True) - mean) / max(r - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(others > 0, mean / others, np.nan)


def twitch_selectivity(
    configurations: Sequence[str],
    region_peak_displacement_mm: ArrayLike,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[TwitchSelectivity, ...]:
    """Per configuration: how much more region k twitched than the others.

    ``region_peak_displacement_mm``: ``(n_stimuli, n_regions)`` peak
    displacement per region (its size is used; a stimulus with a region not
    measured, NaN, is left out). The ratio is region k's mean over the other
    regions' mean; its 95 % interval a percentile bootstrap over stimuli
    (``n_boot``, seeded). ``strongest_region`` is the region whose ratio's
    interval lies above 1 and above every other region's, else -1.

    >>> peaks = [[2.0, 0.5, 0.5], [2.2, 0.4, 0.6], [1.8, 0.6, 0.4]]
    >>> t, = twitch_selectivity(["C0-A1"] * 3, peaks)
    >>> [round(float(v), 3) for v in t.ratio], t.strongest_region
    ([4.0, 0.4, 0.4], 0)
    """
    d = np.abs(np.asarray(region_peak_displacement_mm, dtype=float))
    if d.ndim != 2 or d.shape[0] != len(configurations) or d.shape[1] < 2:
        raise ValueError(
            "region_peak_displacement_mm must be (n_stimuli, n_regions ≥ 2) with "
            f"one row per configuration given; got {d.shape}, {len(configurations)}"
        )
    rng = np.random.default_rng(seed)
    out = []
    n_regions = d.shape[1]
    for config, rows in _groups(configurations).items():
        peaks = d[rows]
        peaks = peaks[np.all(np.isfinite(peaks), axis=1)]
        n = peaks.shape[0]
        nan_r = np.full(n_regions, np.nan)
        if n < 3:
            mean = peaks.mean(axis=0) if n else nan_r
            out.append(
                TwitchSelectivity(
                    config, n, mean, nan_r, np.full((n_regions, 2), np.nan), -1
                )
            )
            continue
        ratio = _ratios(peaks)
        boot = _ratios(peaks[rng.integers(0, n, size=(n_boot, n))])  # (B, R)
        ci = np.column_stack(
            [np.nanpercentile(boot, 2.5, axis=0), np.nanpercentile(boot, 97.5, axis=0)]
        )
        best = -1
        if np.all(np.isfinite(ratio)):
            k = int(np.argmax(ratio))
            rest = np.delete(ci[:, 1], k)
            if ci[k, 0] > 1.0 and np.all(ci[k, 0] > rest):
                best = k
        out.append(TwitchSelectivity(config, n, peaks.mean(axis=0), ratio, ci, best))
    return tuple(out)


def counted(volley: dict[str, Any]) -> bool:
    """Whether a ``site_record`` volley counts as a fibre's (records written
    before ``counted`` existed: unless ``on_artifact``)."""
    return bool(volley.get("counted", not volley.get("on_artifact")))


def _fibres(record: dict) -> set[str]:
    # a volley on the artifact's remains, or unsupported, is no fibre's
    volleys = record.get("volleys") or []
    return {str(v.get("fibre")) for v in volleys if counted(v)}


def _median(values: list[float]) -> float | None:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    return float(np.median(v)) if v.size else None


def precise(fit: BidirectionalFit, precision: float = 0.05) -> bool:
    """Whether a determined speed's 95 % interval lies within ±``precision``
    of it (what a map per site pools).

    >>> x = np.array([20.0, 40.0, 60.0, 80.0]) * 1e-3
    >>> precise(fit_bidirectional(x, 0.4e-3 + np.abs(x - 0.05) / 25.0))
    True
    """
    lo, hi = fit.velocity_ci95_m_per_s
    return bool(fit.determined and (hi - lo) / 2 <= precision * fit.velocity_m_per_s)


def _precise_dict(fit: dict, precision: float) -> bool:
    lo, hi = fit.get("velocity_ci95_m_per_s") or (None, None)
    v = fit.get("velocity_m_per_s")
    if lo is None or hi is None or v is None:
        return False
    return bool((hi - lo) / 2 <= precision * v)


def site_map(records: list[dict], *, precision: float = 0.05) -> list[dict]:
    """One cell per electrode configuration: the response, both fibres, the
    selectivity measures and where the spikes started.

    Records are the per-pulse dicts of the offline pipeline with
    ``configuration`` ("C3-A4"; records without one are grouped as "C0-A1",
    the single head pair), optionally ``site_m`` (the cathode's position),
    ``bidirectional`` (``BidirectionalFit.to_dict()`` per volley, aligned with
    ``volleys``) and ``region_peak_displacement_mm``. Velocities and sites are
    medians over the determined fits of clean volleys or whose speed is
    ``precise``: measured on the generator, a fit bent by a merged spike or
    an artifact's remains seldom is either (docs/analysis.md).
    """
    configs = [str(r.get("configuration") or "C0-A1") for r in records]
    fibres = [_fibres(r) for r in records]
    select = {
        s.configuration: s
        for s in fibre_selectivity(
            configs, ["mgf" in f for f in fibres], ["lgf" in f for f in fibres]
        )
    }
    regions = [r.get("region_peak_displacement_mm") or [] for r in records]
    n_regions = max((len(v) for v in regions), default=0)
    twitch: dict[str, TwitchSelectivity] = {}
    if n_regions >= 2:
        table = np.array(
            [[np.nan if (k >= len(v) or v[k] is None) else v[k] for k in range(n_regions)]
             for v in regions],
            dtype=float,
        )  # fmt: skip
        twitch = {t.configuration: t for t in twitch_selectivity(configs, table)}
    out = []
    for config, rows in _groups(configs).items():
        rs = [records[i] for i in rows]
        fits: dict[str, list[dict]] = defaultdict(list)
        for r in rs:
            for v, f in zip(
                r.get("volleys") or [], r.get("bidirectional") or [], strict=False
            ):
                # Clean volleys or precise fits: an arrival timed on the
                # artifact's remains or a merged spike bends the V and widens
                # its interval (docs/analysis.md).
                if (
                    f
                    and counted(v)
                    and f.get("determined")
                    and (v.get("clean", False) or _precise_dict(f, precision))
                ):
                    fits[str(v.get("fibre"))].append(f)
        per_fibre = {}
        for fibre in ("mgf", "lgf"):
            fs = fits.get(fibre, [])
            per_fibre[fibre] = {
                "n": len(fs),
                "velocity_m_per_s_median": _median([f["velocity_m_per_s"] for f in fs]),
                "anterior_velocity_m_per_s_median": _median(
                    [f["anterior"]["velocity_m_per_s"] for f in fs]
                ),
                "posterior_velocity_m_per_s_median": _median(
                    [f["posterior"]["velocity_m_per_s"] for f in fs]
                ),
                "site_m_median": _median(
                    [f["site_m"] for f in fs if f.get("site_determined")]
                ),
            }
        sites = [r.get("site_m") for r in rs if r.get("site_m") is not None]
        cell = {
            "configuration": config,
            "site_m": float(sites[0]) if sites else None,
            "n": len(rs),
            "response_probability": float(
                np.mean([bool(r.get("responded")) for r in rs])
            ),
            "fibre_probability": {
                f: float(np.mean([f in fibres[i] for i in rows]))
                for f in ("mgf", "lgf")
            },
            "selectivity": select[config].to_dict(),
            "propagation": per_fibre,
            "twitch": twitch[config].to_dict() if config in twitch else None,
        }
        out.append(cell)
    return out
