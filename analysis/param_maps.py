"""Parameter maps, recruitment curves and strength–duration fits.

Records are dicts, one per pulse, joining delivered parameters and responses:
``amplitude_vpp``, ``duration_s``, ``pair``, ``responded``, ``amplitude_uv``
(per channel), ``volleys`` (each with ``fibre`` and
``conduction_velocity_m_per_s``), ``peak_displacement_mm``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import expit


def _mean(values) -> float | None:
    v = np.array([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def _fibre_volleys(record: dict, fibre: str) -> list[dict]:
    return [v for v in record.get("volleys") or [] if v.get("fibre") == fibre]


def _has(record: dict, fibre: str) -> bool:
    return bool(_fibre_volleys(record, fibre))


def _fibre_mean(records: list[dict], fibre: str) -> float | None:
    return _mean(
        v.get("conduction_velocity_m_per_s")
        for r in records
        for v in _fibre_volleys(r, fibre)
    )


def parameter_map(records: list[dict]) -> list[dict]:
    """One cell per (amplitude, duration, pair): counts and mean measures."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        key = (
            round(r["amplitude_vpp"], 3),
            round(r["duration_s"], 6),
            r.get("pair", 0),
        )
        cells[key].append(r)
    out = []
    for (amp, dur, pair), rs in sorted(cells.items()):
        amps = [r.get("amplitude_uv") or [] for r in rs if r.get("responded")]
        n_ch = max((len(a) for a in amps), default=0)
        per_channel = [
            _mean(a[ch] if ch < len(a) else None for a in amps) for ch in range(n_ch)
        ]
        out.append(
            {
                "amplitude_vpp": amp,
                "duration_s": dur,
                "pair": pair,
                "n": len(rs),
                "response_probability": float(
                    np.mean([bool(r.get("responded")) for r in rs])
                ),
                "amplitude_uv_mean": per_channel,
                # Per fibre, never mixed: the map's velocity is the MGF's.
                "conduction_velocity_m_per_s": _fibre_mean(rs, "mgf"),
                "conduction_velocity_m_per_s_by_fibre": {
                    f: _fibre_mean(rs, f) for f in ("mgf", "lgf")
                },
                "fibre_probability": {
                    f: float(np.mean([_has(r, f) for r in rs])) for f in ("mgf", "lgf")
                },
                "peak_displacement_mm": _mean(
                    r.get("peak_displacement_mm") for r in rs
                ),
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class RecruitmentFit:
    """Logistic recruitment: P(response) = 1 / (1 + exp(−(V − threshold)/slope))."""

    threshold_vpp: float  # 50 % response
    slope_vpp: float
    n: int

    def probability(self, amplitude_vpp):
        """Fitted response probability at ``amplitude_vpp``."""
        return expit((np.asarray(amplitude_vpp) - self.threshold_vpp) / self.slope_vpp)


def fit_recruitment(amplitudes_vpp, responded) -> RecruitmentFit:
    """Maximum-likelihood logistic fit of responses (0/1) against amplitude.

    >>> amplitudes = np.repeat([2.0, 3.0, 4.0, 5.0, 6.0], 4)
    >>> responded = [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    >>> fit = fit_recruitment(amplitudes, responded)
    >>> round(fit.threshold_vpp, 1), fit.n  # 50 % response
    (3.5, 20)
    """
    a = np.asarray(amplitudes_vpp, dtype=float)
    y = np.asarray(responded, dtype=float)
    if a.size < 3 or y.min() == y.max():
        raise ValueError(
            "a recruitment fit needs at least 3 stimuli with both responses and "
            f"failures; got {a.size} stimuli, {int(y.sum())} responses"
        )

    def nll(params):
        th, log_s = params
        z = (a - th) / np.exp(log_s)
        return np.sum(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))

    start = (float(np.median(a)), np.log(max(np.std(a) / 4, 1e-3)))
    res = optimize.minimize(
        nll,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000},
    )
    return RecruitmentFit(float(res.x[0]), float(np.exp(res.x[1])), int(a.size))


@dataclass(frozen=True, slots=True)
class StrengthDurationFit:
    """Weiss/Lapicque: threshold = rheobase · (1 + chronaxie / duration)."""

    rheobase_vpp: float
    chronaxie_s: float
    rheobase_se_vpp: float  # NaN: two durations leave no residual to estimate it
    chronaxie_se_s: float

    def threshold_vpp(self, duration_s):
        """The fitted 50 % threshold at ``duration_s``."""
        return self.rheobase_vpp * (1 + self.chronaxie_s / np.asarray(duration_s))

    def to_dict(self) -> dict:
        """JSON-ready (an undefined standard error becomes None)."""
        return {
            "rheobase_vpp": self.rheobase_vpp,
            "chronaxie_s": self.chronaxie_s,
            "rheobase_se_vpp": _finite(self.rheobase_se_vpp),
            "chronaxie_se_s": _finite(self.chronaxie_se_s),
        }


def fit_strength_duration(durations_s, thresholds_vpp) -> StrengthDurationFit:
    """Least-squares fit of thresholds measured at several pulse durations.

    Weiss's law V50(d) = rheobase·(1 + chronaxie/d), with the simulated worm's
    MGF (docs/simulated-rig.md):

    >>> d = np.array([2.0, 3.3, 5.0, 6.7]) * 1e-3
    >>> fit = fit_strength_duration(d, 2.9 * (1 + 0.06e-3 / d))
    >>> round(fit.rheobase_vpp, 6), round(fit.chronaxie_s * 1e3, 6)
    (2.9, 0.06)
    """
    d = np.asarray(durations_s, dtype=float)
    t = np.asarray(thresholds_vpp, dtype=float)
    if d.size < 2 or np.unique(d).size < 2:
        raise ValueError("a strength–duration fit needs thresholds at 2+ durations")
    # threshold = b + (b·c)/d is linear in 1/d: slope b·c, intercept b.
    design = np.column_stack([np.ones_like(d), 1.0 / d])
    (b, bc), *_ = np.linalg.lstsq(design, t, rcond=None)
    cov = None
    if d.size > 2:
        resid = t - design @ np.array([b, bc])
        s2 = resid @ resid / (d.size - 2)
        cov = s2 * np.linalg.inv(design.T @ design)
    c = bc / b
    se_b = float(np.sqrt(cov[0, 0])) if cov is not None else float("nan")
    se_c = (
        float(abs(c) * np.sqrt(cov[1, 1] / bc**2 + cov[0, 0] / b**2))
        if cov is not None and bc != 0
        else float("nan")
    )
    return StrengthDurationFit(float(b), float(c), se_b, se_c)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
