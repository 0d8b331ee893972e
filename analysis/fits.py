r"""Fits with honest uncertainty: recruitment, strength–duration, habituation.

Every fit returns a frozen dataclass holding its values, their 95 % intervals,
``determined`` and, when it is not, the ``reason`` in one sentence a reader
understands. A value that the data cannot support is NaN (``None`` in JSON),
never a confident number; an interval's open side is ``inf`` (``None``).

**Recruitment** (``fit_recruitment``): P(response) = F((V − V50)/s) at one pulse
duration, F the logistic (default) or the normal CDF, by maximum likelihood.
When the responses separate completely (every failure below every response)
or quasi-completely (they mix at one amplitude only), the likelihood has no
maximum: the slope runs to zero and any number printed for it is the
optimiser's stopping point. That is detected from the data before any fitting
and reported as an interval, "threshold between A and B Vpp", with no slope.
Otherwise threshold and slope get profile-likelihood 95 % intervals (the
likelihood-ratio test inverted, χ²₁); an interval that runs past the tested
amplitudes leaves the threshold not determined.

**Strength–duration**: the threshold V(d) at pulse duration d, with
rheobase R > 0 and chronaxie c > 0 (the threshold at d = c is 2R):

- Weiss: V = R·(1 + c/d)
- Lapicque: V = R / (1 − 2^(−d/c))  (the membrane time constant τ = c / ln 2)

``fit_strength_duration`` fits thresholds measured at several durations
(least squares on log thresholds, so the scatter may grow with the threshold;
profile intervals with the F quantile). ``fit_strength_duration_trials`` fits
the trials themselves, P(response) = F((ln V − ln V(d)·(1 + η·L))/σ): every
stimulus counts, a duration whose responses separate costs nothing, and the
worm's habituation (below) is part of the model, so R and c are the *rested*
worm's. Either is "not determinable from this design" when fewer than three
durations were tested, when the thresholds do not fall with duration (the
chronaxie then lies below the tested range: only an upper bound is known),
when they still fall as 1/d at the longest pulse (rheobase below the tested
range), or when the chronaxie or its interval lies more than ``FAR`` times
outside the tested durations.

**Habituation** (``fit_habituation``): a worm stimulated often responds less;
its threshold rises with every stimulus and recovers over tens of seconds
(docs/analysis.md). The model: threshold × (1 + η·L), where L, the
``habituation_load``, is the number of earlier stimuli, each discounted by
exp(−age/τ) (τ = ``HABITUATION_RECOVERY_S``, an assumption, stated in the
results). η (threshold rise per recent stimulus) is fitted with its interval,
with one threshold per duration left free, so it is measured in any design
whose load varies (it grows from zero at the start of a session and falls in
every rest); those thresholds, each with its interval, are the rested worm's
(``Habituation.rested_thresholds``).

>>> rng = np.random.default_rng(1)
>>> v = np.repeat(np.linspace(2.0, 4.0, 9), 12)
>>> fit = fit_recruitment(v, rng.random(v.size) < expit((v - 3.0) / 0.2))
>>> fit.determined, round(fit.threshold_vpp, 2), fit.describe()
(True, 3.04, 'threshold 3.04 Vpp (95 % CI 2.93–3.15), slope 0.14 Vpp (0.089–0.21)')
>>> fit_recruitment([2.0, 2.5, 3.0, 3.5], [0, 0, 1, 1]).describe()
'threshold between 2.5 and 3 Vpp (complete separation: every failure below every response; no slope)'
"""  # noqa: E501

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import expit, log_expit, log_ndtr, ndtr

from analysis._profile import ProfileFit

CONFIDENCE = 0.95
# Half the χ²₁ quantile: a likelihood-ratio interval's rise in −log L.
_LR_CUTOFF = float(stats.chi2.ppf(CONFIDENCE, 1)) / 2
LINKS = ("logit", "probit")
SD_MODELS = ("weiss", "lapicque")
# A chronaxie more than this many times outside the tested durations is an
# extrapolation of the model's shape, not a measurement.
FAR = 10.0
# Habituation's recovery time constant, assumed (tactile habituation in the
# earthworm recovers over tens of seconds; docs/analysis.md).
HABITUATION_RECOVERY_S = 30.0
# A threshold's interval may reach this many amplitude spans beyond the tested
# amplitudes before it counts as unbounded.
_REACH = 1.0


def _ci(values: tuple[float, float] | None) -> list[float | None] | None:
    if values is None:
        return None
    return [float(v) if np.isfinite(v) else None for v in values]


def _or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if np.isfinite(value) else "∞"


# --------------------------------------------------------------- likelihood


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _link_terms_of(y: np.ndarray, link: str):
    """The function of z giving −log L of responses ``y`` (0/1) with P = F(z),
    and its derivative in z. For a fit's many evaluations: 1 − y and −y are
    formed once (the same numbers as formed per call, so the same bits)."""
    not_y, minus_y = 1 - y, -y

    def logit(z: np.ndarray) -> tuple[float, np.ndarray]:
        nll = -float(np.add.reduce(y * log_expit(z) + not_y * log_expit(-z)))
        return nll, expit(z) - y

    def probit(z: np.ndarray) -> tuple[float, np.ndarray]:
        log_p, log_q = log_ndtr(z), log_ndtr(-z)
        log_pdf = -0.5 * z * z - _HALF_LOG_2PI
        nll = -float(np.add.reduce(y * log_p + not_y * log_q))
        return nll, minus_y * np.exp(log_pdf - log_p) + not_y * np.exp(log_pdf - log_q)

    return logit if link == "logit" else probit


def _cdf(z: np.ndarray, link: str) -> np.ndarray:
    return np.asarray(expit(z) if link == "logit" else ndtr(z))


def _check_link(link: str) -> None:
    if link not in LINKS:
        raise ValueError(f"link {link!r} is not one of {LINKS}")


def _as_trials(
    amplitudes_vpp: ArrayLike, responded: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(amplitudes_vpp, dtype=float)
    y = np.asarray(responded, dtype=float)
    if a.ndim != 1 or y.shape != a.shape:
        raise ValueError(
            f"amplitudes_vpp and responded must be (n_stimuli,); got {a.shape}, "
            f"{y.shape}"
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("amplitudes_vpp must be finite and > 0")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("responded must be 0/1 (or bools)")
    return a, y


# --------------------------------------------------------------- recruitment


@dataclass(frozen=True, slots=True)
class RecruitmentFit:
    """P(response) = F((V − threshold)/slope) at one pulse duration.

    ``threshold_vpp`` and ``slope_vpp`` are NaN unless determined; when the
    responses separate, ``threshold_between_vpp`` says where the threshold
    lies and ``separation`` how they separate.
    """

    duration_s: float  # NaN: not given
    n: int  # stimuli fitted
    n_responses: int
    link: str
    determined: bool
    reason: str | None
    threshold_vpp: float  # 50 % response
    threshold_ci95_vpp: tuple[float, float] | None
    slope_vpp: float  # the curve's scale: F's argument is (V − threshold)/slope
    slope_ci95_vpp: tuple[float, float] | None
    separation: str | None = None  # "complete", "quasi-complete", None
    threshold_between_vpp: tuple[float, float] | None = None
    amplitude_range_vpp: tuple[float, float] | None = None

    def probability(self, amplitude_vpp: ArrayLike) -> np.ndarray:
        """Fitted response probability at ``amplitude_vpp`` (NaN if none)."""
        v = np.asarray(amplitude_vpp, dtype=float)
        if not self.determined:
            return np.full(v.shape, np.nan)
        return _cdf((v - self.threshold_vpp) / self.slope_vpp, self.link)

    def describe(self) -> str:
        """One line for a person: the values with their intervals, or why not."""
        if self.determined:
            lo, hi = self.threshold_ci95_vpp or (np.nan, np.nan)
            slo, shi = self.slope_ci95_vpp or (np.nan, np.nan)
            return (
                f"threshold {self.threshold_vpp:.3g} Vpp (95 % CI {lo:.3g}–"
                f"{hi:.3g}), slope {self.slope_vpp:.2g} Vpp ({slo:.2g}–{_fmt(shi, 2)})"
            )
        if self.threshold_between_vpp is not None:
            a, b = self.threshold_between_vpp
            return f"threshold between {a:g} and {_fmt(b)} Vpp ({self.reason})"
        return f"not determined: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and open interval sides become None)."""
        return {
            "duration_s": _or_none(self.duration_s),
            "n": self.n,
            "n_responses": self.n_responses,
            "link": self.link,
            "determined": self.determined,
            "reason": self.reason,
            "threshold_vpp": _or_none(self.threshold_vpp),
            "threshold_ci95_vpp": _ci(self.threshold_ci95_vpp),
            "slope_vpp": _or_none(self.slope_vpp),
            "slope_ci95_vpp": _ci(self.slope_ci95_vpp),
            "separation": self.separation,
            "threshold_between_vpp": _ci(self.threshold_between_vpp),
            "amplitude_range_vpp": _ci(self.amplitude_range_vpp),
            "summary": self.describe(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecruitmentFit:
        """The inverse of ``to_dict`` (for the report, which reads the JSON)."""

        def pair(key: str) -> tuple[float, float] | None:
            v = d.get(key)
            if v is None:
                return None
            lo = -np.inf if v[0] is None else float(v[0])
            return (lo, np.inf if v[1] is None else float(v[1]))

        def num(key: str) -> float:
            v = d.get(key)
            return np.nan if v is None else float(v)

        return cls(
            duration_s=num("duration_s"),
            n=int(d["n"]),
            n_responses=int(d["n_responses"]),
            link=d["link"],
            determined=bool(d["determined"]),
            reason=d.get("reason"),
            threshold_vpp=num("threshold_vpp"),
            threshold_ci95_vpp=pair("threshold_ci95_vpp"),
            slope_vpp=num("slope_vpp"),
            slope_ci95_vpp=pair("slope_ci95_vpp"),
            separation=d.get("separation"),
            threshold_between_vpp=pair("threshold_between_vpp"),
            amplitude_range_vpp=pair("amplitude_range_vpp"),
        )


def _undetermined(
    a: np.ndarray,
    y: np.ndarray,
    duration_s: float,
    link: str,
    reason: str,
    *,
    separation: str | None = None,
    between: tuple[float, float] | None = None,
) -> RecruitmentFit:
    return RecruitmentFit(
        duration_s=duration_s,
        n=int(a.size),
        n_responses=int(y.sum()),
        link=link,
        determined=False,
        reason=reason,
        threshold_vpp=np.nan,
        threshold_ci95_vpp=None,
        slope_vpp=np.nan,
        slope_ci95_vpp=None,
        separation=separation,
        threshold_between_vpp=between,
        amplitude_range_vpp=(float(a.min()), float(a.max())) if a.size else None,
    )


def separation(
    amplitudes_vpp: ArrayLike, responded: ArrayLike
) -> tuple[str, tuple[float, float]] | None:
    """How the responses separate by amplitude, if they do, and where the
    threshold must lie: ``("complete", (A, B))`` when every failure is below
    every response (A the highest failure, B the lowest response),
    ``("quasi-complete", (A, B))`` when failures and responses share a single
    amplitude V (A, B the tested amplitudes either side of V; 0 or infinity
    on the side where V is the end of the range: it bounds nothing there).
    None when they overlap over two or more amplitudes (a slope exists) or
    when only one outcome occurred.

    >>> separation([2, 3, 4, 5], [0, 0, 1, 1])
    ('complete', (3.0, 4.0))
    >>> separation([2, 3, 3, 4], [0, 0, 1, 1])
    ('quasi-complete', (2.0, 4.0))
    >>> separation([2, 3, 4, 5, 5], [0, 0, 0, 1, 0])
    ('quasi-complete', (4.0, inf))
    >>> separation([2, 3, 4, 5], [0, 1, 0, 1]) is None
    True
    """
    a, y = _as_trials(amplitudes_vpp, responded)
    hit = y == 1
    if hit.all() or not hit.any():
        return None
    top_failure, low_response = float(a[~hit].max()), float(a[hit].min())
    if top_failure < low_response:
        return "complete", (top_failure, low_response)
    if top_failure == low_response:
        levels = np.unique(a)
        below, above = levels[levels < top_failure], levels[levels > top_failure]
        # At an end of the amplitudes tried, the mixed level bounds nothing on
        # its far side: 1 response in 4 at the strongest pulse puts the 50 %
        # point anywhere above the level below it, beyond the range too.
        return "quasi-complete", (
            float(below.max()) if below.size else 0.0,
            float(above.min()) if above.size else math.inf,
        )
    return None


def fit_recruitment(
    amplitudes_vpp: ArrayLike,
    responded: ArrayLike,
    *,
    duration_s: float = np.nan,
    link: str = "logit",
) -> RecruitmentFit:
    """Maximum-likelihood recruitment curve with profile 95 % intervals, or the
    interval the threshold lies in when the responses separate (module
    docstring). Stimuli are (amplitude Vpp > 0, responded 0/1) pairs.

    >>> fit_recruitment([2, 3, 4], [1, 1, 1]).describe()
    'threshold between 0 and 2 Vpp (every one of 3 stimuli evoked a response, down to 2 Vpp)'
    """
    _check_link(link)
    a, y = _as_trials(amplitudes_vpp, responded)
    if a.size < 3 or np.unique(a).size < 2:
        return _undetermined(
            a, y, duration_s, link,
            f"{a.size} stimuli at {np.unique(a).size} amplitude(s); a recruitment "
            "curve needs at least 3 stimuli at 2 or more amplitudes",
        )  # fmt: skip
    if not y.any():
        return _undetermined(
            a, y, duration_s, link,
            f"none of {a.size} stimuli evoked a response, up to {a.max():g} Vpp",
            between=(float(a.max()), np.inf),
        )  # fmt: skip
    if y.all():
        return _undetermined(
            a, y, duration_s, link,
            f"every one of {a.size} stimuli evoked a response, down to {a.min():g} Vpp",
            between=(0.0, float(a.min())),
        )  # fmt: skip
    if a[y == 1].max() < a[y == 0].min():
        return _undetermined(
            a, y, duration_s, link,
            "responses only below the failures: they do not rise with amplitude",
        )  # fmt: skip
    split = separation(a, y)
    if split is not None:
        kind, between = split
        why = (
            "complete separation: every failure below every response; no slope"
            if kind == "complete"
            else f"quasi-complete separation: responses and failures mix only at "
            f"{a[y == 1].min():g} Vpp; no slope"
        )
        return _undetermined(
            a, y, duration_s, link, why, separation=kind, between=between
        )
    return _fit_curve(a, y, duration_s, link)


def _fit_curve(
    a: np.ndarray, y: np.ndarray, duration_s: float, link: str
) -> RecruitmentFit:
    lo, hi = float(a.min()), float(a.max())
    span = hi - lo

    terms = _link_terms_of(y, link)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        threshold, log_slope = p
        slope = math.exp(log_slope)
        z = (a - threshold) / slope
        nll, h = terms(z)
        return nll, np.array([-h.sum() / slope, -(h * z).sum()])

    # Start where the observed response fraction crosses one half.
    start = np.array([float(np.median(a)), math.log(span / 8)])
    bounds = [
        (lo - (_REACH + 1) * span, hi + (_REACH + 1) * span),
        (math.log(span * 1e-4), math.log(span * 1e2)),
    ]
    fit = ProfileFit(objective, bounds, start)
    threshold, log_slope = fit.best.p
    t_lo, t_hi = fit.interval(0, _LR_CUTOFF)
    s_lo, s_hi = fit.interval(1, _LR_CUTOFF)
    slope_ci = (
        0.0 if np.isinf(s_lo) else math.exp(s_lo),
        np.inf if np.isinf(s_hi) else math.exp(s_hi),
    )
    reach = (lo - _REACH * span, hi + _REACH * span)
    if not (reach[0] <= t_lo and t_hi <= reach[1]):
        return _undetermined(
            a, y, duration_s, link,
            "the threshold's 95 % interval reaches far beyond the tested "
            f"{lo:g}–{hi:g} Vpp: the responses barely depend on amplitude here",
        )  # fmt: skip
    return RecruitmentFit(
        duration_s=duration_s,
        n=int(a.size),
        n_responses=int(y.sum()),
        link=link,
        determined=True,
        reason=None,
        threshold_vpp=float(threshold),
        threshold_ci95_vpp=(float(t_lo), float(t_hi)),
        slope_vpp=math.exp(log_slope),
        slope_ci95_vpp=slope_ci,
        amplitude_range_vpp=(lo, hi),
    )


# --------------------------------------------------------------- habituation


def habituation_load(
    onsets_s: ArrayLike, recovery_s: float = HABITUATION_RECOVERY_S
) -> np.ndarray:
    """Each stimulus's load: the earlier stimuli, each discounted by
    exp(−age/``recovery_s``). 0 for the first; at one stimulus every T seconds
    it settles at 1/(e^(T/τ) − 1) (29.5 at 1 s, 5.5 at 5 s, for τ = 30 s).

    >>> habituation_load([0.0, 30.0, 60.0]).round(3).tolist()
    [0.0, 0.368, 0.503]
    """
    t = np.asarray(onsets_s, dtype=float)
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError("onsets_s must be (n_stimuli,) finite times in seconds")
    if not recovery_s > 0:
        raise ValueError(f"recovery_s must be > 0, got {recovery_s}")
    if np.any(np.diff(t) < 0):
        raise ValueError("onsets_s must be in the order delivered (not decreasing)")
    load = np.zeros(t.size)
    for i in range(1, t.size):
        load[i] = (load[i - 1] + 1.0) * math.exp(-(t[i] - t[i - 1]) / recovery_s)
    return load


@dataclass(frozen=True, slots=True)
class RestedThreshold:
    """The 50 % threshold at one duration of a worm at rest (load 0), from the
    habituation fit; NaN when the interval is open on a side."""

    duration_s: float
    threshold_vpp: float
    ci95_vpp: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "duration_s": _or_none(self.duration_s),
            "threshold_vpp": _or_none(self.threshold_vpp),
            "ci95_vpp": _ci(self.ci95_vpp),
        }


@dataclass(frozen=True, slots=True)
class Habituation:
    """Threshold × (1 + per_stimulus · load): how much each recent stimulus
    raised the threshold, and what that did over this session."""

    n: int
    recovery_s: float  # τ of the load, assumed (not fitted)
    determined: bool
    reason: str | None
    per_stimulus: float  # fractional threshold rise per unit of load
    per_stimulus_ci95: tuple[float, float] | None
    load_mean: float  # recent stimuli, discounted, over the fitted stimuli
    load_max: float
    response_rate_first_half: float  # raw, in delivery order
    response_rate_second_half: float
    # Per duration, the rested worm's threshold (``fit_habituation`` only).
    rested_thresholds: tuple[RestedThreshold, ...] = ()

    @property
    def threshold_rise_mean(self) -> float:
        """The fitted threshold rise at the session's mean load (a fraction)."""
        return self.per_stimulus * self.load_mean

    @property
    def threshold_rise_max(self) -> float:
        """The fitted threshold rise at the session's largest load."""
        return self.per_stimulus * self.load_max

    def describe(self) -> str:
        """One line for a person."""
        rates = (
            f"response rate {self.response_rate_first_half:.0%} in the first half, "
            f"{self.response_rate_second_half:.0%} in the second"
        )
        if not self.determined:
            return f"habituation not determined: {self.reason}; {rates}"
        lo, hi = self.per_stimulus_ci95 or (np.nan, np.nan)
        return (
            f"threshold +{self.per_stimulus:.2%} per recent stimulus (95 % CI "
            f"{lo:.2%}–{hi:.2%}; recovery τ {self.recovery_s:g} s assumed): "
            f"+{self.threshold_rise_mean:.1%} on average, up to "
            f"+{self.threshold_rise_max:.1%}; {rates}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n": self.n,
            "recovery_s": self.recovery_s,
            "determined": self.determined,
            "reason": self.reason,
            "per_stimulus": _or_none(self.per_stimulus),
            "per_stimulus_ci95": _ci(self.per_stimulus_ci95),
            "load_mean": _or_none(self.load_mean),
            "load_max": _or_none(self.load_max),
            "threshold_rise_mean": _or_none(self.threshold_rise_mean),
            "threshold_rise_max": _or_none(self.threshold_rise_max),
            "response_rate_first_half": _or_none(self.response_rate_first_half),
            "response_rate_second_half": _or_none(self.response_rate_second_half),
            "rested_thresholds": [r.to_dict() for r in self.rested_thresholds],
            "summary": self.describe(),
        }


# Box for the trial-level fits: log σ (relative threshold scatter) and η.
_LOG_SIGMA_BOUNDS = (math.log(1e-3), math.log(2.0))
_ETA_BOUNDS = (0.0, 1.0)


def _trial_objective(log_v, y, link, log_threshold, n_thr, load):
    """−log L of P = F((ln V − ln θ)/σ), θ = threshold(params)·(1 + η·load).

    ``log_threshold(q)`` gives ln θ before habituation and its Jacobian
    (n, n_thr); the parameters are q, then ln σ, then η (if ``load``)."""
    terms = _link_terms_of(y, link)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        lt, jac = log_threshold(p[:n_thr])
        sigma = math.exp(p[n_thr])
        grad = np.empty(n_thr + 1 + (load is not None))
        if load is not None:
            raised = 1.0 + p[n_thr + 1] * load
            lt = lt + np.log(raised)
        z = (log_v - lt) / sigma
        nll, h = terms(z)
        grad[:n_thr] = -(h @ jac) / sigma
        grad[n_thr] = -float(h @ z)
        if load is not None:
            grad[n_thr + 1] = -float(h @ (load / raised)) / sigma
        return nll, grad

    return objective


_SEPARATED = (
    "the responses separate completely in this model (no threshold scatter is "
    "left to fit), so its likelihood gives no interval"
)


def _separated(fit: ProfileFit, sigma_index: int) -> bool:
    """The fitted scatter σ sits on its floor: every response lies above every
    failure once thresholds are fitted, and the likelihood has no maximum."""
    return bool(fit.best.p[sigma_index] <= _LOG_SIGMA_BOUNDS[0] + 1e-3)


def _halves(y: np.ndarray) -> tuple[float, float]:
    half = y.size // 2
    first = float(y[:half].mean()) if half else np.nan
    return first, float(y[half:].mean()) if y.size - half else np.nan


def _duration_groups(durations_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Durations equal to the microsecond are one (Python's round: 0.0033 stays).
    keys = np.array([round(float(v), 6) for v in durations_s])
    levels, index = np.unique(keys, return_inverse=True)
    return levels, index


def _habituation_from(
    fit: ProfileFit, eta_index: int, load: np.ndarray, y: np.ndarray, recovery_s
) -> Habituation:
    first, second = _halves(y)
    eta = float(fit.best.p[eta_index])
    reason = None
    lo = hi = np.nan
    if _separated(fit, eta_index - 1):
        reason = _SEPARATED
    else:
        lo, hi = fit.interval(eta_index, _LR_CUTOFF)
        lo = 0.0 if np.isinf(lo) else lo  # η ≥ 0: the box's edge is a real bound
    if reason is None and np.ptp(load) < 0.5:
        reason = "the load hardly varies in this session (one stimulus in a long rest)"
    elif reason is None and np.isinf(hi):
        reason = "the responses do not limit it"
    determined = reason is None
    return Habituation(
        n=int(y.size),
        recovery_s=float(recovery_s),
        determined=determined,
        reason=reason,
        per_stimulus=eta if determined else np.nan,
        per_stimulus_ci95=(lo, hi) if determined else None,
        load_mean=float(load.mean()),
        load_max=float(load.max()),
        response_rate_first_half=first,
        response_rate_second_half=second,
    )


def fit_habituation(
    amplitudes_vpp: ArrayLike,
    responded: ArrayLike,
    onsets_s: ArrayLike,
    durations_s: ArrayLike | None = None,
    *,
    load: ArrayLike | None = None,
    recovery_s: float = HABITUATION_RECOVERY_S,
    link: str = "probit",
) -> Habituation:
    """Threshold rise per recent stimulus (module docstring), one free
    threshold per pulse duration, by maximum likelihood with a profile 95 %
    interval. ``load``: each stimulus's ``habituation_load`` when it counts
    stimuli that are not fitted (the later pulses of a train); by default
    it is computed from ``onsets_s``."""
    _check_link(link)
    a, y = _as_trials(amplitudes_vpp, responded)
    t = np.asarray(onsets_s, dtype=float)
    if t.shape != a.shape:
        raise ValueError("onsets_s must be (n_stimuli,) like amplitudes_vpp")
    d = np.full(a.size, np.nan) if durations_s is None else np.asarray(durations_s)
    if d.shape != a.shape:
        raise ValueError("durations_s must be (n_stimuli,) like amplitudes_vpp")
    if load is None:
        order = np.argsort(t, kind="stable")
        load_arr = np.empty(a.size)
        load_arr[order] = habituation_load(t[order], recovery_s)
    else:
        load_arr = np.asarray(load, dtype=float)
    first, second = _halves(y[np.argsort(t, kind="stable")])
    if a.size < 10 or y.all() or not y.any():
        return Habituation(
            int(a.size), float(recovery_s), False,
            f"{a.size} stimuli, {int(y.sum())} responses: too few of each",
            np.nan, None,
            float(load_arr.mean()) if a.size else np.nan,
            float(load_arr.max()) if a.size else np.nan, first, second,
        )  # fmt: skip
    levels, group = _duration_groups(np.nan_to_num(d, nan=0.0))
    k = levels.size
    onehot = np.zeros((a.size, k))
    onehot[np.arange(a.size), group] = 1.0

    def log_threshold(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return q[group], onehot

    log_v = np.log(a)
    objective = _trial_objective(log_v, y, link, log_threshold, k, load_arr)
    lv = (math.log(a.min()) - 3.0, math.log(a.max()) + 3.0)
    start = np.concatenate(
        [np.full(k, float(np.median(log_v))), [math.log(0.1)], [0.0]]
    )
    fit = ProfileFit(objective, [lv] * k + [_LOG_SIGMA_BOUNDS, _ETA_BOUNDS], start)
    result = _habituation_from(fit, k + 1, load_arr, y, recovery_s)
    rested = []
    for j, duration in enumerate(levels if result.determined else ()):
        lo, hi = (math.exp(v) if np.isfinite(v) else (0.0 if v < 0 else np.inf)
                  for v in fit.interval(j, _LR_CUTOFF))  # fmt: skip
        bounded = lo > 0 and np.isfinite(hi)
        rested.append(
            RestedThreshold(
                float(duration) if duration > 0 else np.nan,
                math.exp(fit.best.p[j]) if bounded else np.nan,
                (lo, hi),
            )
        )
    return replace(
        result,
        response_rate_first_half=first,
        response_rate_second_half=second,
        rested_thresholds=tuple(rested),
    )


# --------------------------------------------------------------- strength–duration


def _log_g(d: np.ndarray, log_c: float, model: str) -> tuple[np.ndarray, np.ndarray]:
    """The threshold's duration factor g (as ln g), and d ln g / d ln c."""
    c = math.exp(log_c)
    if model == "weiss":
        return np.log1p(c / d), c / (d + c)
    k = d * math.log(2.0) / c
    # ln g = −ln(1 − e^(−k)); d ln g / d ln c = k e^(−k) / (1 − e^(−k)).
    tail = -np.expm1(-k)
    return -np.log(tail), k * np.exp(-k) / tail


def _check_model(model: str) -> None:
    if model not in SD_MODELS:
        raise ValueError(f"model {model!r} is not one of {SD_MODELS}")


def sd_threshold_vpp(
    model: str, rheobase_vpp: float, chronaxie_s: float, duration_s: ArrayLike
) -> np.ndarray:
    """The strength–duration law's threshold at ``duration_s``.

    >>> sd_threshold_vpp("weiss", 2.0, 1e-3, [1e-3, 1.0]).round(3).tolist()
    [4.0, 2.002]
    >>> sd_threshold_vpp("lapicque", 2.0, 1e-3, [1e-3]).tolist()
    [4.0]
    """
    _check_model(model)
    log_g, _ = _log_g(np.asarray(duration_s, dtype=float), math.log(chronaxie_s), model)
    return np.asarray(rheobase_vpp * np.exp(log_g))


@dataclass(frozen=True, slots=True)
class StrengthDurationFit:
    """Rheobase and chronaxie with 95 % intervals (module docstring).

    A value is NaN unless determined; its interval is kept whenever the data
    bound it on one side at least (0 and ``inf`` mark the open sides), so a
    chronaxie below the tested range still reads "at most U".
    """

    model: str  # "weiss" or "lapicque"
    method: str  # "thresholds" (one per duration) or "trials"
    n: int  # thresholds or trials fitted
    durations_s: tuple[float, ...]  # the distinct durations tested
    determined: bool  # rheobase and chronaxie both
    reason: str | None
    rheobase_vpp: float
    rheobase_ci95_vpp: tuple[float, float] | None
    rheobase_determined: bool
    chronaxie_s: float
    chronaxie_ci95_s: tuple[float, float] | None
    chronaxie_determined: bool
    habituation: Habituation | None = None  # the trials' fit, with onsets

    def threshold_vpp(self, duration_s: ArrayLike) -> np.ndarray:
        """The fitted (rested) 50 % threshold at ``duration_s``; NaN unless
        both rheobase and chronaxie are determined."""
        d = np.asarray(duration_s, dtype=float)
        if not self.determined:
            return np.full(d.shape, np.nan)
        return sd_threshold_vpp(self.model, self.rheobase_vpp, self.chronaxie_s, d)

    def describe(self) -> str:
        """One line for a person."""
        r_lo, r_hi = self.rheobase_ci95_vpp or (np.nan, np.nan)
        c_lo, c_hi = self.chronaxie_ci95_s or (np.nan, np.nan)
        name = self.model.capitalize()
        if self.rheobase_determined:
            rheo = (
                f"rheobase {self.rheobase_vpp:.3g} Vpp (95 % CI {r_lo:.3g}–{r_hi:.3g})"
            )
        else:
            rheo = "rheobase not determined"
        if self.chronaxie_determined:
            chron = (
                f"chronaxie {self.chronaxie_s * 1e3:.3g} ms (95 % CI "
                f"{c_lo * 1e3:.3g}–{c_hi * 1e3:.3g})"
            )
        elif self.chronaxie_ci95_s is not None and np.isfinite(c_hi):
            chron = f"chronaxie not determined (at most {c_hi * 1e3:.3g} ms)"
        elif self.chronaxie_ci95_s is not None and c_lo > 0:
            chron = f"chronaxie not determined (at least {c_lo * 1e3:.3g} ms)"
        else:
            chron = "chronaxie not determined"
        tail = f" — {self.reason}" if self.reason else ""
        return f"{name}: {rheo}, {chron}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and open interval sides become None)."""
        return {
            "model": self.model,
            "method": self.method,
            "n": self.n,
            "durations_s": list(self.durations_s),
            "determined": self.determined,
            "reason": self.reason,
            "rheobase_vpp": _or_none(self.rheobase_vpp),
            "rheobase_ci95_vpp": _ci(self.rheobase_ci95_vpp),
            "rheobase_determined": self.rheobase_determined,
            "chronaxie_s": _or_none(self.chronaxie_s),
            "chronaxie_ci95_s": _ci(self.chronaxie_ci95_s),
            "chronaxie_determined": self.chronaxie_determined,
            "habituation": None
            if self.habituation is None
            else self.habituation.to_dict(),
            "summary": self.describe(),
        }


def _too_few_durations(model, method, n, levels) -> StrengthDurationFit:
    shown = ", ".join(f"{v * 1e3:g}" for v in levels) or "none"
    return StrengthDurationFit(
        model, method, n, tuple(float(v) for v in levels), False,
        f"not determinable from this design: thresholds at {len(levels)} "
        f"duration(s) ({shown} ms); a strength–duration fit needs 3 or more",
        np.nan, None, False, np.nan, None, False,
    )  # fmt: skip


def _verdict(
    model: str,
    method: str,
    n: int,
    levels: np.ndarray,
    fit: ProfileFit,
    cutoff: float,
    habituation: Habituation | None = None,
) -> StrengthDurationFit:
    """Rheobase and chronaxie from a fit over (ln R, ln c, ...), with the
    rules of the module docstring."""
    if method == "trials" and _separated(fit, 2):
        return StrengthDurationFit(
            model, method, n, tuple(float(v) for v in levels), False,
            f"not determined: {_SEPARATED}", np.nan, None, False, np.nan, None,
            False, habituation,
        )  # fmt: skip
    log_r, log_c = fit.best.p[:2]
    r_ci = tuple(0.0 if v == -np.inf else math.exp(v) if np.isfinite(v) else np.inf
                 for v in fit.interval(0, cutoff))  # fmt: skip
    c_ci = tuple(0.0 if v == -np.inf else math.exp(v) if np.isfinite(v) else np.inf
                 for v in fit.interval(1, cutoff))  # fmt: skip
    d_min, d_max = float(levels.min()), float(levels.max())
    tested = f"{d_min * 1e3:g}–{d_max * 1e3:g} ms"
    reasons = []
    if c_ci[0] == 0.0:
        reasons.append(
            f"the thresholds do not fall measurably with duration over {tested}: "
            "the chronaxie lies below the tested range"
        )
    elif c_ci[1] == np.inf:
        reasons.append(
            f"the thresholds still fall as 1/duration at the longest pulse ({d_max * 1e3:g}"
            " ms): the chronaxie lies above the tested range"
        )
    elif c_ci[0] < d_min / FAR or c_ci[1] > d_max * FAR:
        reasons.append(
            f"the chronaxie's interval ({c_ci[0] * 1e3:.3g}–{c_ci[1] * 1e3:.3g} ms) "
            f"reaches more than {FAR:g}× outside the tested {tested}"
        )
    chronaxie_ok = not reasons
    rheobase_ok = bool(r_ci[0] > 0.0 and np.isfinite(r_ci[1]))
    if not rheobase_ok:
        reasons.append("the rheobase is not bounded by these thresholds")
    return StrengthDurationFit(
        model=model,
        method=method,
        n=n,
        durations_s=tuple(float(v) for v in levels),
        determined=chronaxie_ok and rheobase_ok,
        reason=("not determinable from this design: " + "; ".join(reasons))
        if reasons
        else None,
        rheobase_vpp=math.exp(log_r) if rheobase_ok else np.nan,
        rheobase_ci95_vpp=r_ci,  # type: ignore[arg-type]
        rheobase_determined=rheobase_ok,
        chronaxie_s=math.exp(log_c) if chronaxie_ok else np.nan,
        chronaxie_ci95_s=c_ci,  # type: ignore[arg-type]
        chronaxie_determined=chronaxie_ok,
        habituation=habituation,
    )


def _log_c_bounds(levels: np.ndarray) -> tuple[float, float]:
    return math.log(levels.min() / 1e3), math.log(levels.max() * 1e3)


def _best_start(objective, bounds, start: np.ndarray, index: int) -> np.ndarray:
    """The start whose parameter ``index`` (on a grid across its box) gives the
    lowest objective: the fit then begins in the right valley."""
    lo, hi = bounds[index]
    best, best_value = start, np.inf
    for v in np.linspace(lo, hi, 9)[1:-1]:
        trial = start.copy()
        trial[index] = v
        value, _ = objective(trial)
        if value < best_value:
            best, best_value = trial, value
    return best


def fit_strength_duration(
    durations_s: ArrayLike, thresholds_vpp: ArrayLike, *, model: str = "weiss"
) -> StrengthDurationFit:
    """Rheobase and chronaxie from thresholds measured at several durations.

    Least squares on ln threshold (a constant relative scatter), R and c > 0;
    95 % profile intervals with the F quantile (n − 2 degrees of freedom).
    With the simulated worm's MGF (docs/simulated-rig.md) and wider
    durations than a classroom can use:

    >>> d = np.array([0.02, 0.05, 0.1, 0.3, 1.0]) * 1e-3
    >>> fit = fit_strength_duration(d, 2.9 * (1 + 0.06e-3 / d) * [1.01, 0.99, 1, 1.01, 0.99])
    >>> fit.describe()
    'Weiss: rheobase 2.89 Vpp (95 % CI 2.81–2.97), chronaxie 0.0606 ms (95 % CI 0.0569–0.0645)'

    With the classroom's 2–6.7 ms the thresholds barely fall (the chronaxie is
    far below 2 ms), and the fit says so:

    >>> d = [2e-3, 3.3e-3, 5e-3, 6.7e-3]
    >>> fit_strength_duration(d, [2.99, 2.93, 2.96, 2.92]).describe()
    'Weiss: rheobase 2.9 Vpp (95 % CI 2.78–3), chronaxie not determined (at most 0.198 ms) — not determinable from this design: the thresholds do not fall measurably with duration over 2–6.7 ms: the chronaxie lies below the tested range'
    """  # noqa: E501
    _check_model(model)
    d = np.asarray(durations_s, dtype=float)
    t = np.asarray(thresholds_vpp, dtype=float)
    if d.ndim != 1 or t.shape != d.shape:
        raise ValueError(
            f"durations_s and thresholds_vpp must be (n,); got {d.shape}, {t.shape}"
        )
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValueError("durations_s must be finite and > 0")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValueError("thresholds_vpp must be finite and > 0")
    levels, _ = _duration_groups(d)
    if levels.size < 3:
        return _too_few_durations(model, "thresholds", int(d.size), levels)
    log_t = np.log(t)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        log_g, dlog_g = _log_g(d, p[1], model)
        r = log_t - p[0] - log_g
        return float(r @ r), np.array([-2 * r.sum(), -2 * float(r @ dlog_g)])

    bounds = [
        (math.log(t.min() / 100), math.log(t.max() * 10)),
        _log_c_bounds(levels),
    ]
    start = np.array([math.log(t.min()), math.log(levels.min())])
    start = _best_start(objective, bounds, start, 1)
    fit = ProfileFit(objective, bounds, start)
    dof = d.size - 2
    s2 = fit.best.value / dof
    cutoff = max(float(stats.f.ppf(CONFIDENCE, 1, dof)) * s2, 1e-300)
    return _verdict(model, "thresholds", int(d.size), levels, fit, cutoff)


def fit_strength_duration_trials(
    amplitudes_vpp: ArrayLike,
    durations_s: ArrayLike,
    responded: ArrayLike,
    *,
    onsets_s: ArrayLike | None = None,
    load: ArrayLike | None = None,
    model: str = "weiss",
    link: str = "probit",
    recovery_s: float = HABITUATION_RECOVERY_S,
) -> StrengthDurationFit:
    """Rheobase and chronaxie from the trials themselves, by maximum
    likelihood: P(response) = F((ln V − ln(V(d)·(1 + η·L)))/σ) (module
    docstring), 95 % profile-likelihood intervals. With ``onsets_s`` (or a
    ``load``) the habituation η is fitted too and reported, and R, c are the
    rested worm's; without, every stimulus counts as rested."""
    _check_model(model)
    _check_link(link)
    a, y = _as_trials(amplitudes_vpp, responded)
    d = np.asarray(durations_s, dtype=float)
    if d.shape != a.shape or not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValueError("durations_s must be (n_stimuli,), finite and > 0")
    levels, _ = _duration_groups(d)
    load_arr = None
    if load is not None:
        load_arr = np.asarray(load, dtype=float)
    elif onsets_s is not None:
        t = np.asarray(onsets_s, dtype=float)
        order = np.argsort(t, kind="stable")
        load_arr = np.empty(a.size)
        load_arr[order] = habituation_load(t[order], recovery_s)
    if load_arr is not None and load_arr.shape != a.shape:
        raise ValueError("onsets_s / load must be (n_stimuli,) like amplitudes_vpp")
    if levels.size < 3:
        return _too_few_durations(model, "trials", int(a.size), levels)
    if y.all() or not y.any():
        return replace(
            _too_few_durations(model, "trials", int(a.size), levels),
            reason="not determinable from this design: "
            + ("every" if y.all() else "no")
            + " stimulus evoked a response",
        )

    def log_threshold(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_g, dlog_g = _log_g(d, q[1], model)
        return q[0] + log_g, np.column_stack([np.ones(d.size), dlog_g])

    log_v = np.log(a)
    objective = _trial_objective(log_v, y, link, log_threshold, 2, load_arr)
    bounds = [
        (math.log(a.min() / 100), math.log(a.max() * 10)),
        _log_c_bounds(levels),
        _LOG_SIGMA_BOUNDS,
    ]
    start = [float(np.median(log_v)), math.log(levels.min()), math.log(0.1)]
    if load_arr is not None:
        bounds.append(_ETA_BOUNDS)
        start.append(0.0)
    start_arr = _best_start(objective, bounds, np.array(start), 1)
    fit = ProfileFit(objective, bounds, start_arr)
    habituation = (
        None if load_arr is None else _habituation_from(fit, 3, load_arr, y, recovery_s)
    )
    return _verdict(model, "trials", int(a.size), levels, fit, _LR_CUTOFF, habituation)
