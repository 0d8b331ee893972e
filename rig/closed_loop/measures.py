"""Response measures a closed loop can optimise, read from one online result.

A result is the dict the session's online analysis emits per stimulus:
``response_measured`` for the electrical measures, ``motion_measured`` for the
twitch (``needs_motion``). Every electrical measure is a number for every
stimulus, so the optimiser sees non-responses too (as 0), never a gap; a twitch
that could not be measured (tracking lost the worm) is NaN, and the loop skips
that observation rather than record a false 0.
"""

from __future__ import annotations

import math
import re
from typing import Any

from analysis.displacement import ONLINE_TWITCH_WINDOW_S

# name -> what it is (for errors and docs)
MEASURES = {
    "amplitude_uv_mean": "AP amplitude averaged over the recording pairs, µV (0 if none)",
    "amplitude_uv[K]": "AP amplitude at recording pair K, µV (0 if none there)",
    "responded": "1 if a volley crossed the pairs, else 0",
    "responded_cv": "1 if a volley with a giant-fibre conduction velocity "
    "(5–50 m/s) crossed the pairs, else 0: a CV-confirmed response",
    "mgf_responded": "1 if a volley the analysis named the medial giant fibre's "
    "crossed the pairs, else 0 (a constraint: keep P(MGF) low)",
    "lgf_responded": "1 if a volley the analysis named a lateral giant fibre's "
    "crossed the pairs, else 0",
    "conduction_velocity_m_per_s": "conduction velocity of the first volley, m/s (0 if none)",
    "peak_displacement_mm": "peak twitch displacement of the whole body within "
    f"{ONLINE_TWITCH_WINDOW_S:g} s of the stimulus, mm (needs live segment tracking)",
    "peak_displacement_mm[K]": "peak twitch displacement of the body region around "
    "recording pair K, mm",
}
CV_CONFIRMED_M_PER_S = (5.0, 50.0)
_PAIR = re.compile(r"^amplitude_uv\[(\d+)\]$")
_REGION = re.compile(r"^peak_displacement_mm\[(\d+)\]$")


def check_measure(measure: str) -> None:
    """Raise ValueError unless ``measure`` is one of MEASURES."""
    if measure in MEASURES or _PAIR.match(measure) or _REGION.match(measure):
        return
    raise ValueError(
        f"objective measure {measure!r} is not one of: {', '.join(MEASURES)}"
    )


def response_value(result: dict[str, Any], measure: str) -> float:
    """The value of ``measure`` for one stimulus's online result."""
    check_measure(measure)
    velocity = result.get("conduction_velocity_m_per_s")
    if measure == "responded":
        return float(bool(result.get("responded")))
    if measure == "responded_cv":
        lo, hi = CV_CONFIRMED_M_PER_S
        ok = velocity is not None and math.isfinite(velocity) and lo <= velocity <= hi
        return float(bool(result.get("responded")) and ok)
    if measure in ("mgf_responded", "lgf_responded"):
        fibre = measure.split("_")[0]
        volleys = result.get("volleys") or []
        return float(any(v.get("fibre") == fibre for v in volleys))
    if measure == "conduction_velocity_m_per_s":
        return float(velocity) if velocity is not None else 0.0
    if measure == "amplitude_uv_mean":
        return float(result.get("amplitude_uv_mean") or 0.0)
    if measure == "peak_displacement_mm":
        return _or_nan(result.get("peak_displacement_mm"))
    pair = _PAIR.match(measure)
    key = "amplitude_uv" if pair else "region_peak_displacement_mm"
    k = int((pair or _REGION.match(measure)).group(1))  # type: ignore[union-attr]
    values = result.get(key) or []
    if k >= len(values):
        raise ValueError(
            f"objective measure {measure!r}: the rig records {len(values)} pairs "
            f"(0–{len(values) - 1})"
        )
    return _or_nan(values[k]) if key != "amplitude_uv" else float(values[k] or 0.0)


def needs_motion(measure: str) -> bool:
    """True for the twitch measures (from ``motion_measured``, not ``response_measured``)."""
    return measure.startswith("peak_displacement_mm")


def _or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)
