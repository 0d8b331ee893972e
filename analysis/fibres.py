"""Giant fibres across a recording: which volleys are the MGF, which the LGF.

One sweep alone cannot tell a lone LGF volley from a slow MGF; a recording can.
The velocities of every clean volley of every sweep are pooled, and split in
two only where the data say so: the largest gap in log-velocity must be at
least ``distinct_ratio`` (1.3×: MGF 25–35 m/s, LGF 10–17 m/s, 2–4× apart in the
literature), and a side that holds fewer than ``min_share`` of the sweeps is
no fibre unless it is the larger side (a handful of odd volleys is not a
fibre). The faster group is the medial giant
fibre; one group is named by its speed (``mgf_min_velocity_m_per_s``).

Within a group, a volley more than ``max_spread`` (10 %) from the group's
median is not classified (it is kept out of every statistic, and counted), and
a sweep contributes at most one volley per fibre.

Volleys whose timing was not clean (``Volley.clean``: fewer than three
arrivals clear of the artifact's remains, clipping or the other fibre) are
named like the others but are not results: they move to the stimulus's
``suspect_volleys``, are left out of the statistics, and are counted.

A fibre's velocity is *determined* only when at least ``min_sweeps`` sweeps
recruited it with clean timing, no more than two in three of its sweeps were
not clean, and the 95 % interval of its median (distribution-free, from order
statistics) is within ±3 % of the median: otherwise the summary says "not
determined" and why. No statistic mixes fibres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binom

from analysis.propagation import StimulusResponse, Volley, first_volley_fields

FIBRES = ("mgf", "lgf")


@dataclass(frozen=True, slots=True)
class FibreSummary:
    """One fibre's conduction velocity over a recording."""

    fibre: str
    n: int  # sweeps that recruited it, with clean timing
    median_m_per_s: float  # NaN when no sweep did
    ci95_m_per_s: tuple[float, float] | None
    determined: bool
    reason: str | None  # why not determined
    n_suspect: int = 0  # sweeps that recruited it, timing not clean

    def to_dict(self) -> dict:
        """JSON-ready (``median`` is None when not determined)."""
        median = self.median_m_per_s
        return {
            "median": float(median) if self.determined else None,
            "median_all": float(median) if np.isfinite(median) else None,
            "ci95": list(self.ci95_m_per_s) if self.ci95_m_per_s else None,
            "n": self.n,
            "n_suspect": self.n_suspect,
            "determined": self.determined,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class FibreClassification:
    """Responses with their volleys named across the recording, and summaries."""

    responses: list[StimulusResponse | None]
    fibres: dict[str, FibreSummary]
    unclassified: int  # volleys that belonged to no fibre


def median_ci(v: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median: order statistics whose ranks
    come from the binomial distribution (no assumption about the spread, and
    honest for a handful of sweeps, where a bootstrap is too narrow)."""
    s = np.sort(np.asarray(v, dtype=float))
    n = s.size
    k = int(binom.ppf((1 - level) / 2, n, 0.5))  # ranks k+1 .. n-k (1-based)
    if k < 1:
        return float(s[0]), float(s[-1])
    return float(s[k - 1]), float(s[n - k])


def _groups(
    log_v: np.ndarray, distinct_ratio: float, min_count: int
) -> list[np.ndarray]:
    """The velocity groups (log-velocities), fastest first.

    The volleys split at their largest gap in log-velocity if it is at least
    ``distinct_ratio``; a side is a group if it holds ``min_count`` volleys
    or is the larger side (a few odd volleys beside a fibre are not a fibre;
    two fibres seen in a handful of sweeps are two fibres).
    """
    s = np.sort(log_v)
    if s.size < 2:
        return [s]
    gaps = np.diff(s)
    k = int(np.argmax(gaps))
    if gaps[k] < np.log(distinct_ratio):
        return [s]
    sides = [s[k + 1 :], s[: k + 1]]
    largest = max(side.size for side in sides)
    return [side for side in sides if side.size >= min(min_count, largest)]


def classify_fibres(
    responses: Sequence[StimulusResponse | None],
    *,
    distinct_ratio: float = 1.3,
    min_share: float = 0.1,
    max_spread: float = 0.10,
    min_sweeps: int = 5,
    max_ci_fraction: float = 0.03,
    mgf_min_velocity_m_per_s: float = 20.0,
) -> FibreClassification:
    """Name every volley by the recording's fibre groups; summarise each fibre."""
    analysed = [r for r in responses if r is not None]
    pool = [
        (i, j, vo.conduction_velocity_m_per_s)
        for i, r in enumerate(responses)
        if r is not None
        for j, vo in enumerate(r.volleys)
        if vo.clean  # groups come from volleys whose timing counts
    ]
    velocities = np.array([v for _, _, v in pool], dtype=float)
    min_count = max(3, int(np.ceil(min_share * max(len(analysed), 1))))
    groups: dict[str, float] = {}  # fibre -> median velocity
    if velocities.size:
        found = _groups(np.log(velocities), distinct_ratio, min_count)
        medians = [float(np.exp(np.median(g))) for g in found]
        if len(medians) == 2:
            groups["mgf"], groups["lgf"] = medians
        else:
            fast = medians[0] >= mgf_min_velocity_m_per_s
            groups["mgf" if fast else "lgf"] = medians[0]
    named: list[StimulusResponse | None] = []
    unclassified = 0
    per_fibre: dict[str, list[float]] = {f: [] for f in FIBRES}
    suspect = dict.fromkeys(FIBRES, 0)
    for r in responses:
        if r is None:
            named.append(None)
            continue
        chosen: dict[str, Volley] = {}
        for vo in r.volleys:
            v = vo.conduction_velocity_m_per_s
            best = min(groups, key=lambda f: abs(np.log(v / groups[f])), default=None)
            if best is None or abs(v / groups[best] - 1) > max_spread:
                unclassified += 1
                continue
            other = chosen.get(best)
            if other is not None:
                unclassified += 1
                # keep the volley nearer the group's velocity
                if abs(v - groups[best]) >= abs(
                    other.conduction_velocity_m_per_s - groups[best]
                ):
                    continue
            chosen[best] = replace(vo, fibre=best)
        named_volleys = [chosen[f] for f in FIBRES if f in chosen]
        # Only clean volleys are results; the others are kept aside, named.
        volleys = tuple(vo for vo in named_volleys if vo.clean)
        doubtful = tuple(vo for vo in named_volleys if not vo.clean)
        for vo in volleys:
            per_fibre[vo.fibre].append(vo.conduction_velocity_m_per_s)
        for vo in doubtful:
            suspect[vo.fibre] += 1
        named.append(
            replace(
                r,
                volleys=volleys,
                suspect_volleys=doubtful,
                **first_volley_fields(volleys, r.latency_s.size),
            )
        )
    fibres = {
        f: replace(
            _summary(
                f, np.array(per_fibre[f]), suspect[f], min_sweeps, max_ci_fraction
            ),
            n_suspect=suspect[f],
        )
        for f in FIBRES
    }
    return FibreClassification(named, fibres, unclassified)


def _summary(
    fibre: str, v: np.ndarray, n_suspect: int, min_sweeps: int, max_ci_fraction: float
) -> FibreSummary:
    if v.size == 0:
        reason = "no sweep recruited it with clean timing"
        return FibreSummary(fibre, 0, float("nan"), None, False, reason)
    median = float(np.median(v))
    ci = median_ci(v)
    if v.size < min_sweeps:
        reason = f"recruited in {v.size} sweeps; at least {min_sweeps} are needed"
        return FibreSummary(fibre, int(v.size), median, ci, False, reason)
    if n_suspect > 2 * v.size:
        reason = (
            f"timing clean in only {v.size} of {v.size + n_suspect} sweeps "
            "(artifact, clipping or the other fibre in the way)"
        )
        return FibreSummary(fibre, int(v.size), median, ci, False, reason)
    half_width = max(median - ci[0], ci[1] - median) / median
    if half_width > max_ci_fraction:
        reason = (
            f"95 % interval ±{100 * half_width:.1f} % of the median; "
            f"at most ±{100 * max_ci_fraction:.0f} % is reported"
        )
        return FibreSummary(fibre, int(v.size), median, ci, False, reason)
    return FibreSummary(fibre, int(v.size), median, ci, True, None)


def headline(fibres: dict[str, FibreSummary], n_analysed: int) -> dict:
    """``conduction_velocity_m_per_s`` of the JSON: the fastest determined fibre."""
    for f in FIBRES:
        s = fibres[f]
        if s.determined:
            return {
                "median": s.median_m_per_s,
                "ci95": list(s.ci95_m_per_s) if s.ci95_m_per_s else None,
                "n_stimuli": s.n,
                "fibre": f,
            }
    return {"median": None, "ci95": None, "n_stimuli": 0, "fibre": None}
