"""Parameter maps: counts and mean measures per commanded stimulus (the
recruitment and strength–duration fits are in ``analysis.fits``).

Records are dicts, one per pulse, joining delivered parameters and responses:
``amplitude_vpp``, ``duration_s``, ``configuration``, ``responded`` (a volley
timed clean), ``ap_evoked`` (a fibre fired: clean, or under the pulse's
artifact; ``responded`` where absent), ``amplitude_uv`` (per channel),
``volleys`` and ``suspect_volleys`` (each with ``fibre`` and
``conduction_velocity_m_per_s``), ``peak_displacement_mm``.

A cell's ``response_probability`` counts stimuli that evoked an AP, as the
recruitment fits do; ``timed_response_probability`` those whose volley was
timed clean, the stimuli its latency, amplitude and velocity are means over.
At short pulses an MGF spike under the artifact is the difference.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _mean(values) -> float | None:
    v = np.array([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


def _fibre_volleys(record: dict, fibre: str) -> list[dict]:
    return [v for v in record.get("volleys") or [] if v.get("fibre") == fibre]


def _has(record: dict, fibre: str) -> bool:
    """The fibre fired: a volley named for it, timed clean or not."""
    suspect = record.get("suspect_volleys") or []
    return bool(_fibre_volleys(record, fibre)) or any(
        v.get("fibre") == fibre for v in suspect
    )


def _evoked(record: dict) -> bool:
    return bool(record.get("ap_evoked", record.get("responded")))


def _fibre_mean(records: list[dict], fibre: str) -> float | None:
    return _mean(
        v.get("conduction_velocity_m_per_s")
        for r in records
        for v in _fibre_volleys(r, fibre)
    )


def cell_key(record: dict) -> tuple[float, float, str]:
    """The map cell a record falls in: (amplitude, duration, configuration),
    as the cell's own ``amplitude_vpp``, ``duration_s`` and ``configuration``."""
    return (
        round(record["amplitude_vpp"], 3),
        round(record["duration_s"], 6),
        str(record.get("configuration") or "C0-A1"),
    )


def parameter_map(records: list[dict]) -> list[dict]:
    """One cell per (amplitude, duration, configuration): counts and mean
    measures (a record without a configuration is the classic "C0-A1")."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        cells[cell_key(r)].append(r)
    out = []
    for (amp, dur, configuration), rs in sorted(cells.items()):
        amps = [r.get("amplitude_uv") or [] for r in rs if r.get("responded")]
        n_ch = max((len(a) for a in amps), default=0)
        per_channel = [
            _mean(a[ch] if ch < len(a) else None for a in amps) for ch in range(n_ch)
        ]
        out.append(
            {
                "amplitude_vpp": amp,
                "duration_s": dur,
                "configuration": configuration,
                "n": len(rs),
                "response_probability": float(np.mean([_evoked(r) for r in rs])),
                "timed_response_probability": float(
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
