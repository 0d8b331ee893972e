"""AP amplitude against segment displacement, and the lag of motion after the AP.

A stimulus that evoked no action potential has no AP amplitude: counting it as
0 µV joins two clouds (no AP and no twitch; an AP and a twitch) into one line,
and the correlation then says only that a twitch needs an AP. So the
correlation that answers "does a larger AP move the worm more?" is among
**responders** (stimuli with an AP at that pair). The correlation over **all
stimuli** (no AP counted as 0 µV) is reported beside it, labelled as such.

Each is Pearson's r and Spearman's ρ with a 95 % BCa bootstrap interval (the
stimuli resampled in pairs, ``N_BOOT`` times, seeded: the same data give the
same interval), per body region (recording pair k's AP against the
displacement of the region around it, with the pair's position along the body
in mm) and over the whole body (mean AP amplitude over the pairs against the
whole body's peak displacement). Not determined with fewer than ``MIN_PAIRS``
pairs, or when either measure does not vary.

The lag is the contraction onset of a region minus the AP's latency at its
pair, per responding stimulus: its median with a distribution-free 95 %
interval (``fibres.median_ci``). Onsets come from video frames, so the lag is
no finer than a frame interval.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri, stdtr

from analysis._kernels import finite_ties, pearson_drawn, spearman_drawn
from analysis.fibres import median_ci

N_BOOT = 2000
MIN_PAIRS = 8
CONFIDENCE = 0.95
BOOT_SEED = 20240
TIE_TOLERANCE = 1e-9  # relative: resampled values equal to the estimate (_bca)


def _or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair; NaN (no warning) where a row is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    num = (xc * yc).sum(axis=-1)
    den = np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    out = np.full(np.shape(num), np.nan)
    return np.divide(num, den, out=out, where=den > 1e-12 * (1 + np.abs(num)))


def _pearson_drawn(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Pearson's r of each resample: row r draws pairs ``idx[r]`` (Numba
    kernel: ``_pearson_rows(x[idx], y[idx])`` bit for bit, without the
    (m, k) temporaries)."""
    out = np.empty(idx.shape[0])
    pearson_drawn(x, y, np.ascontiguousarray(idx), out)
    return out


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's rank among the distinct values (equal values equal), and
    how many distinct values there are: what the rank kernels count with."""
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), int(distinct.size)


def _spearman_drawn(
    x: tuple[np.ndarray, int], y: tuple[np.ndarray, int], idx: np.ndarray
) -> np.ndarray:
    """Spearman's ρ of each resample (ties: average ranks, as spearmanr) of
    the values coded ``x`` and ``y`` (``_codes``): ``_pearson_rows`` of the
    rows' ``scipy.stats.rankdata`` bit for bit, in one Numba kernel."""
    out = np.empty(idx.shape[0])
    spearman_drawn(x[0], x[1], y[0], y[1], np.ascontiguousarray(idx), out)
    return out


# Resamples of up to this many pairs are kept (``_draws``): 8 MB each at most.
_KEPT_DRAWS_MAX_N = 256


def _draws(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap's resamples of ``n`` pairs, (``N_BOOT``, n) each: the
    seeded generator's first draw (Pearson's) and its second (Spearman's).
    Every correlation over n pairs draws these same two, so up to
    ``_KEPT_DRAWS_MAX_N`` pairs they are drawn once per n (a recording's
    regions mostly share their n) and kept, read only."""
    return _kept_draws(n) if n <= _KEPT_DRAWS_MAX_N else _draw(n)


def _draw(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(BOOT_SEED)
    return rng.integers(0, n, size=(N_BOOT, n)), rng.integers(0, n, size=(N_BOOT, n))


@functools.lru_cache(maxsize=4)
def _kept_draws(n: int) -> tuple[np.ndarray, np.ndarray]:
    first, second = _draw(n)
    first.flags.writeable = second.flags.writeable = False  # shared
    return first, second


def _leave_one_out(n: int) -> np.ndarray:
    """The jackknife's samples of ``n`` pairs, (n, n - 1): row i leaves pair i
    out (kept like ``_draws``)."""
    return _kept_leave_one_out(n) if n <= _KEPT_DRAWS_MAX_N else _jackknife(n)


def _jackknife(n: int) -> np.ndarray:
    keep = ~np.eye(n, dtype=bool)
    return np.broadcast_to(np.arange(n), (n, n))[keep].reshape(n, n - 1)


@functools.lru_cache(maxsize=4)
def _kept_leave_one_out(n: int) -> np.ndarray:
    jack = _jackknife(n)
    jack.flags.writeable = False  # shared
    return jack


def _bca(
    boot: np.ndarray, jack: np.ndarray, estimate: float
) -> tuple[float, float] | None:
    """BCa bootstrap interval from the statistic of each paired resample
    (``boot``, one per row of ``_draws``) and of each jackknife sample
    (``jack``, row i without pair i); None when more than 10 % of the
    resamples are degenerate (a constant measure)."""
    # A resample that is the sample itself in another order has the estimate's
    # value only up to rounding (its sums run in another order): within a
    # relative 1e-9 it counts as a tie. Compared exactly, rounding would
    # decide whether each such resample is below, and a change of 1e-11 in
    # the data (another artifact fit's last digits) would move the interval.
    finite = np.empty(boot.size)
    n, n_below, n_tie = finite_ties(
        boot, estimate, TIE_TOLERANCE * (1.0 + abs(estimate)), finite
    )
    if n < 0.9 * N_BOOT:
        return None
    boot = finite[:n]
    below = (n_below + 0.5 * n_tie) / n
    alpha = (1 - CONFIDENCE) / 2
    if not 0 < below < 1 or not np.all(np.isfinite(jack)):
        q = (alpha, 1 - alpha)  # plain percentiles
    else:
        z0 = float(ndtri(below))
        d = jack.mean() - jack
        denom = 6.0 * float((d * d).sum()) ** 1.5
        accel = float((d**3).sum()) / denom if denom > 0 else 0.0
        z = _Z_TAILS
        q = tuple(ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    lo, hi = _quantiles(boot, q)
    return lo, hi


# ndtri of the interval's tails, alpha and 1 - alpha (_bca)
_Z_TAILS = ndtri(np.array([(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2]))


def _quantiles(values: np.ndarray, q: tuple[float, ...]) -> list[float]:
    """``np.quantile(values, q)`` (method "linear") of finite ``values``, bit
    for bit: the same partition (of ``values``, in place) at the same
    indices and the same interpolation, as plain floats (the same IEEE
    operations; numpy's argument handling cost ~60 us a call)."""
    n = values.size
    at = []
    for qi in q:
        v = (n - 1) * float(qi)  # numpy's virtual index
        if v >= n - 1:
            below = above = -1
        elif v < 0:
            below = above = 0
        else:
            below = math.floor(v)
            above = below + 1
        at.append((below, above, v - below))
    kth = sorted({0, -1}.union(*((b, a) for b, a, _ in at)))
    values.partition(np.array(kth, dtype=np.intp))
    out = []
    for below, above, gamma in at:
        a, b = float(values[below]), float(values[above])
        diff = b - a  # numpy's _lerp
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


@dataclass(frozen=True, slots=True)
class Correlation:
    """Pearson and Spearman between AP amplitude and displacement."""

    label: str  # "responders" or "all stimuli (no AP = 0 µV)"
    n: int  # stimuli (pairs of values)
    determined: bool
    reason: str | None
    pearson_r: float
    pearson_ci95: tuple[float, float] | None
    pearson_p: float
    spearman_rho: float
    spearman_ci95: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (None where not determined)."""
        return {
            "label": self.label,
            "n": self.n,
            "determined": self.determined,
            "reason": self.reason,
            "pearson_r": _or_none(self.pearson_r),
            "pearson_ci95": list(self.pearson_ci95) if self.pearson_ci95 else None,
            "pearson_p": _or_none(self.pearson_p),
            "spearman_rho": _or_none(self.spearman_rho),
            "spearman_ci95": list(self.spearman_ci95) if self.spearman_ci95 else None,
        }


def correlate(x: ArrayLike, y: ArrayLike, *, label: str = "") -> Correlation:
    """Pearson's r and Spearman's ρ with 95 % BCa bootstrap intervals, over the
    pairs where both values are finite (module docstring).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=40)
    >>> c = correlate(x, x + rng.normal(size=40))
    >>> c.determined, round(c.pearson_r, 2), [round(v, 2) for v in c.pearson_ci95]
    (True, 0.56, [0.27, 0.76])
    >>> correlate([1, 2, 3], [2, 4, 6]).reason
    '3 pairs; at least 8 are needed'
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be (n,) alike; got {a.shape}, {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(a.size)

    def missing(reason: str) -> Correlation:
        return Correlation(label, n, False, reason, np.nan, None, np.nan, np.nan, None)

    if n < MIN_PAIRS:
        return missing(f"{n} pairs; at least {MIN_PAIRS} are needed")
    r = float(_pearson_rows(a, b))
    a_codes, b_codes = _codes(a), _codes(b)
    every = np.arange(n)[None, :]  # the sample itself, as one "resample"
    rho = float(_spearman_drawn(a_codes, b_codes, every)[0])
    if not (np.isfinite(r) and np.isfinite(rho)):
        return missing("one of the measures does not vary")
    r_draws, rho_draws = _draws(n)
    jack = _leave_one_out(n)
    r_ci = _bca(_pearson_drawn(a, b, r_draws), _pearson_drawn(a, b, jack), r)
    rho_ci = _bca(
        _spearman_drawn(a_codes, b_codes, rho_draws),
        _spearman_drawn(a_codes, b_codes, jack),
        rho,
    )
    if r_ci is None or rho_ci is None:
        return missing("too few distinct values: most resamples do not vary")
    t = r * np.sqrt((n - 2) / max(1e-300, 1 - r * r))
    # stdtr(df, -|t|) is what stats.t.sf(|t|, df) computes, without its
    # argument handling (~0.1 ms a call)
    p = float(2 * stdtr(n - 2, -abs(t)))
    return Correlation(label, n, True, None, r, r_ci, p, rho, rho_ci)


@dataclass(frozen=True, slots=True)
class Lag:
    """Contraction onset minus AP arrival, over responding stimuli."""

    n: int
    median_s: float  # NaN: none measured
    ci95_s: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n": self.n,
            "median_s": _or_none(self.median_s),
            "ci95_s": list(self.ci95_s) if self.ci95_s else None,
        }


def _lag(onset_s: np.ndarray, ap_s: np.ndarray) -> Lag:
    lag = onset_s - ap_s
    lag = lag[np.isfinite(lag)]
    if not lag.size:
        return Lag(0, np.nan, None)
    return Lag(int(lag.size), float(np.median(lag)), median_ci(lag))


@dataclass(frozen=True, slots=True)
class RegionCorrelation:
    """One recording pair's AP against its body region's displacement."""

    channel: int
    position_mm: float  # the pair's centre along the body
    region_mm: tuple[float, float]  # the region, along the body
    responders: Correlation
    all_stimuli: Correlation
    lag: Lag  # the region's contraction onset after the AP at its pair

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "channel": self.channel,
            "position_mm": self.position_mm,
            "region_mm": list(self.region_mm),
            "responders": self.responders.to_dict(),
            "all_stimuli": self.all_stimuli.to_dict(),
            "lag": self.lag.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class MotionCorrelation:
    """AP against displacement per region and over the whole body."""

    responders: Correlation  # whole body, stimuli with an AP
    all_stimuli: Correlation  # whole body, no AP counted as 0 µV
    regions: tuple[RegionCorrelation, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON's ``correlation``."""
        return {
            "overall": {
                "responders": self.responders.to_dict(),
                "all_stimuli": self.all_stimuli.to_dict(),
            },
            "regions": [r.to_dict() for r in self.regions],
        }


ALL_LABEL = "all stimuli (no AP = 0 µV)"


def ap_displacement_correlation(
    *,
    responded: ArrayLike,
    amplitude_uv: ArrayLike,
    latency_s: ArrayLike,
    region_peak_displacement_mm: ArrayLike,
    region_onset_latency_s: ArrayLike,
    peak_displacement_mm: ArrayLike,
    positions_mm: ArrayLike,
    region_half_width_mm: float,
) -> MotionCorrelation:
    """Per region and over the body: AP amplitude against peak displacement,
    among responders and over all stimuli, and the lag (module docstring).

    One row per analysed stimulus: ``responded`` (n,); ``amplitude_uv``,
    ``latency_s`` (n, n_channels), NaN where the AP did not reach a pair;
    ``region_*`` (n, n_regions), region k around pair k; ``peak_displacement_mm``
    (n,) the whole body's; ``positions_mm`` the pairs' centres along the body.
    """
    hit = np.asarray(responded, dtype=bool)
    amp = np.asarray(amplitude_uv, dtype=float)
    lat = np.asarray(latency_s, dtype=float)
    peak = np.asarray(region_peak_displacement_mm, dtype=float)
    onset = np.asarray(region_onset_latency_s, dtype=float)
    body = np.asarray(peak_displacement_mm, dtype=float)
    positions = np.asarray(positions_mm, dtype=float)
    n = hit.size
    if amp.ndim != 2 or amp.shape[0] != n or lat.shape != amp.shape:
        raise ValueError(
            "amplitude_uv and latency_s must be (n_stimuli, n_channels) with "
            f"responded (n_stimuli,); got {amp.shape}, {lat.shape}, {hit.shape}"
        )
    if peak.shape != onset.shape or peak.ndim != 2 or peak.shape[0] != n:
        raise ValueError(
            "region_peak_displacement_mm and region_onset_latency_s must be "
            f"(n_stimuli, n_regions); got {peak.shape}, {onset.shape}"
        )
    if body.shape != hit.shape:
        raise ValueError(f"peak_displacement_mm must be (n_stimuli,); got {body.shape}")
    regions = []
    for k in range(min(amp.shape[1], peak.shape[1], positions.size)):
        with_ap = hit & np.isfinite(amp[:, k])
        amp_k = np.where(with_ap, amp[:, k], np.nan)
        centre = float(positions[k])
        regions.append(
            RegionCorrelation(
                channel=k,
                position_mm=centre,
                region_mm=(
                    centre - region_half_width_mm,
                    centre + region_half_width_mm,
                ),
                responders=correlate(amp_k, peak[:, k], label="responders"),
                all_stimuli=correlate(
                    np.where(with_ap, amp[:, k], 0.0), peak[:, k], label=ALL_LABEL
                ),
                lag=_lag(np.where(with_ap, onset[:, k], np.nan), lat[:, k]),
            )
        )
    finite = np.isfinite(amp)
    count = finite.sum(axis=1)
    mean_amp = np.divide(
        np.where(finite, amp, 0.0).sum(axis=1),
        count,
        out=np.full(n, np.nan),
        where=count > 0,
    )
    responders = np.where(hit, mean_amp, np.nan)
    return MotionCorrelation(
        responders=correlate(responders, body, label="responders"),
        all_stimuli=correlate(
            np.where(hit & np.isfinite(mean_amp), mean_amp, 0.0), body, label=ALL_LABEL
        ),
        regions=tuple(regions),
    )
