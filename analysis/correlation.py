"""Correlation of AP amplitude/propagation with segment displacement."""

from __future__ import annotations

import numpy as np
from scipy import stats


def pearson_with_ci(x, y, *, confidence: float = 0.95) -> dict:
    """Pearson r, its CI (Fisher z), p-value and n, over pairs where both are finite.

    >>> result = pearson_with_ci([1, 2, 3, 4, 5, 6], [1.1, 1.9, 3.2, 3.9, 5.1, np.nan])
    >>> round(result["r"], 3), [round(c, 2) for c in result["ci"]], result["n"]
    (0.996, [0.94, 1.0], 5)
    >>> pearson_with_ci([1, 2, 3], [2, 4, 6])["r"] is None  # too few pairs
    True
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 4 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"r": None, "ci": None, "p": None, "n": int(a.size)}
    r, p = stats.pearsonr(a, b)
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + confidence / 2) / np.sqrt(a.size - 3)
    return {
        "r": float(r),
        "ci": [float(np.tanh(z - half)), float(np.tanh(z + half))],
        "p": float(p),
        "n": int(a.size),
    }


def ap_displacement_correlation(records: list[dict]) -> dict:
    """Per region (channel k ↔ region k) and overall: AP amplitude vs displacement.

    Also the lag: median delay from the AP at a pair to contraction onset of
    the region around it (the electromechanical delay), in seconds.
    """
    n_ch = max((len(r.get("amplitude_uv") or []) for r in records), default=0)
    regions = []
    for ch in range(n_ch):
        amp = [
            _at(r.get("amplitude_uv"), ch) if r.get("responded") else 0.0
            for r in records
        ]
        disp = [_at(r.get("region_peak_displacement_mm"), ch) for r in records]
        lag = [
            _at(r.get("region_onset_latency_s"), ch) - _at(r.get("latency_s"), ch)
            for r in records
            if r.get("responded")
        ]
        lags = np.array(lag, dtype=float)
        lags = lags[np.isfinite(lags)]
        regions.append(
            {
                "channel": ch,
                **pearson_with_ci(amp, disp),
                "lag_s_median": float(np.median(lags)) if lags.size else None,
            }
        )
    mean_amp = [
        np.nanmean(np.array(r["amplitude_uv"], dtype=float))
        if r.get("responded") and r.get("amplitude_uv")
        else 0.0
        for r in records
    ]
    overall = pearson_with_ci(
        mean_amp, [r.get("peak_displacement_mm") for r in records]
    )
    return {"overall": overall, "regions": regions}


def _at(values, index) -> float:
    if values is None or index >= len(values) or values[index] is None:
        return float("nan")
    return float(values[index])
