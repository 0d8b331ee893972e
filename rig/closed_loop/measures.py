"""Response measures a closed loop can optimise, read from one online result.

A result is the dict the session's online analysis emits per stimulus
(``response_measured``). Every measure is a number for every stimulus, so the
optimiser sees non-responses too (as 0), never a gap.
"""

from __future__ import annotations

import math
import re
from typing import Any

# name -> what it is (for errors and docs)
MEASURES = {
    "amplitude_uv_mean": "AP amplitude averaged over the recording pairs, µV (0 if none)",
    "amplitude_uv[K]": "AP amplitude at recording pair K, µV (0 if none there)",
    "responded": "1 if a volley crossed the pairs, else 0",
    "responded_cv": "1 if a volley with a giant-fibre conduction velocity "
    "(5–50 m/s) crossed the pairs, else 0: a CV-confirmed response",
    "conduction_velocity_m_per_s": "conduction velocity of the first volley, m/s (0 if none)",
}
CV_CONFIRMED_M_PER_S = (5.0, 50.0)
_PAIR = re.compile(r"^amplitude_uv\[(\d+)\]$")


def check_measure(measure: str) -> None:
    """Raise ValueError unless ``measure`` is one of MEASURES."""
    if measure in MEASURES or _PAIR.match(measure):
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
    if measure == "conduction_velocity_m_per_s":
        return float(velocity) if velocity is not None else 0.0
    if measure == "amplitude_uv_mean":
        return float(result.get("amplitude_uv_mean") or 0.0)
    k = int(_PAIR.match(measure).group(1))  # type: ignore[union-attr]
    amplitudes = result.get("amplitude_uv") or []
    if k >= len(amplitudes):
        raise ValueError(
            f"objective measure {measure!r}: the rig records {len(amplitudes)} pairs "
            f"(0–{len(amplitudes) - 1})"
        )
    value = amplitudes[k]
    return 0.0 if value is None else float(value)
