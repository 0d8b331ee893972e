"""The analysis results as a table and for MATLAB (``neurorig analyze --csv``,
``--mat``; docs/analysis.md, "Tables and MATLAB").

The table has one row per stimulus and fibre (every stimulus × MGF, LGF), so a
spreadsheet, R or pandas filters and groups it without unpacking JSON. Its
numbers are the clean volleys' only: a fibre seen in a volley whose timing was
not clean is flagged ``suspect`` with its numbers left out (they stay in the
JSON's ``suspect_volleys``), so no column mixes what the statistics exclude.
Empty cells are "none" (no volley, not analysed, not given).

The .mat file (scipy.io.savemat, MATLAB 5 format) holds the same table, the
per-stimulus arrays, the per-fibre and per-channel summaries, and the whole
results as JSON text (``jsondecode(results_json)`` in MATLAB) so nothing is lost.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

STIMULUS_COLUMNS = (
    "stimulus", "sample", "time_s", "amplitude_vpp", "delivered_vpp", "duration_s",
    "pair", "polarity", "analysed", "responded",
)  # fmt: skip
VOLLEY_COLUMNS = (
    "fibre", "recruited", "suspect", "conduction_velocity_m_per_s",
    "velocity_se_m_per_s", "n_pairs", "residual_s",
)  # fmt: skip
PER_CHANNEL = ("latency_s", "amplitude_uv", "snr")
STIMULUS_PARAMETERS = (
    "amplitude_vpp",
    "delivered_vpp",
    "duration_s",
    "pair",
    "polarity",
)
CHANNEL_SUMMARY = (
    "index", "position_mm", "latency_s_median", "amplitude_uv_median",
    "response_probability",
)  # fmt: skip
MOTION_COLUMNS = (
    "peak_displacement_mm", "contraction_onset_latency_s", "time_to_peak_s",
)  # fmt: skip
# A recording over sites (the JSON's ``sites``): the stimulus's configuration,
# its site (the cathode's position) and the fibre's V about it (the common
# speed, each side's signed velocity: < 0 toward the head, > 0 toward the tail,
# and the site the V places); empty where not analysed about a site or not
# determined.
SITE_COLUMNS = (
    "configuration", "site_m", "site_fit_velocity_m_per_s",
    "anterior_velocity_m_per_s", "posterior_velocity_m_per_s", "site_fit_m",
)  # fmt: skip


def columns(n_channels: int) -> list[str]:
    """The table's columns for a recording of ``n_channels``."""
    per_channel = [f"{name}_ch{k}" for name in PER_CHANNEL for k in range(n_channels)]
    return [
        *STIMULUS_COLUMNS, *VOLLEY_COLUMNS, *per_channel, *MOTION_COLUMNS,
        *SITE_COLUMNS,
    ]  # fmt: skip


def stimulus_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per stimulus and fibre; None where there is no value."""
    n_ch = int(results["n_channels"])
    fibres = list(results["fibres"])
    rows = []
    for index, stim in enumerate(results["stimuli"]):
        params = stim.get("parameters") or {}
        base = {
            "stimulus": index,
            "sample": stim["sample"],
            "time_s": stim["time_s"],
            "amplitude_vpp": params.get("amplitude_vpp"),
            "delivered_vpp": params.get("delivered_vpp"),
            "duration_s": params.get("duration_s"),
            "pair": params.get("pair"),
            "polarity": params.get("polarity"),
            "analysed": bool(stim.get("analysed")),
            "responded": bool(stim.get("responded")),
            **{key: stim.get(key) for key in MOTION_COLUMNS},
        }
        for fibre in fibres:
            clean = [v for v in stim.get("volleys", []) if v.get("fibre") == fibre]
            suspect = [
                v for v in stim.get("suspect_volleys", []) if v.get("fibre") == fibre
            ]
            volley = next((v for v in clean if v.get("clean", True)), None)
            row = {**base, "fibre": fibre, "recruited": volley is not None}
            row["suspect"] = bool(suspect) or any(
                not v.get("clean", True) for v in clean
            )
            for key in VOLLEY_COLUMNS[3:]:
                row[key] = volley.get(key) if volley else None
            for name in PER_CHANNEL:
                values = (volley.get(name) if volley else None) or [None] * n_ch
                for k in range(n_ch):
                    row[f"{name}_ch{k}"] = values[k] if k < len(values) else None
            row.update(_site_cells(stim, fibre))
            rows.append(row)
    return rows


def _site_cells(stim: dict[str, Any], fibre: str) -> dict[str, Any]:
    """The SITE_COLUMNS of one stimulus and fibre: the first determined V of
    that fibre in the stimulus's analysis about its site."""
    about = stim.get("bidirectional") or {}
    out: dict[str, Any] = dict.fromkeys(SITE_COLUMNS)
    out["configuration"] = stim.get("configuration")
    out["site_m"] = about.get("site_m")
    for volley, fit in zip(about.get("volleys") or [], about.get("fits") or [],
                           strict=False):  # fmt: skip
        if volley.get("fibre") == fibre and fit.get("determined"):
            out["site_fit_velocity_m_per_s"] = fit["velocity_m_per_s"]
            out["anterior_velocity_m_per_s"] = fit["anterior"][
                "signed_velocity_m_per_s"
            ]
            out["posterior_velocity_m_per_s"] = fit["posterior"][
                "signed_velocity_m_per_s"
            ]
            out["site_fit_m"] = fit["site_m"]
            break
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def write_csv(results: dict[str, Any], path: Path) -> None:
    """The table as CSV (comma-separated, a header row, UTF-8)."""
    names = columns(int(results["n_channels"]))
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(names)
        for row in stimulus_rows(results):
            writer.writerow([_cell(row[name]) for name in names])


def _number(value: Any) -> float:
    """A value as a double: True/False are 1/0, None (or text) NaN."""
    return float(value) if isinstance(value, int | float) else math.nan


def _numbers(values: list[Any]) -> np.ndarray:
    return np.array([_number(v) for v in values], dtype=np.float64)


def _matrix(rows: list[list[Any] | None], width: int) -> np.ndarray:
    out = np.full((len(rows), width), math.nan)
    for i, row in enumerate(rows):
        for k, v in enumerate((row or [])[:width]):
            if v is not None:
                out[i, k] = float(v)
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def matlab_variables(results: dict[str, Any]) -> dict[str, Any]:
    """The variables of the .mat file (structs are dicts, cell arrays object
    arrays, every number a double with NaN for none)."""
    n_ch = int(results["n_channels"])
    stimuli = results["stimuli"]
    rows = stimulus_rows(results)
    names = columns(n_ch)
    table = {
        name: np.array([r[name] for r in rows], dtype=object)
        if name in ("fibre", "configuration")  # text: a cell array
        else _numbers([r[name] for r in rows])
        for name in names
    }
    per_stimulus = {
        "sample": _numbers([s["sample"] for s in stimuli]),
        "time_s": _numbers([s["time_s"] for s in stimuli]),
        **{
            key: _numbers([(s.get("parameters") or {}).get(key) for s in stimuli])
            for key in STIMULUS_PARAMETERS
        },
        "analysed": _numbers([bool(s.get("analysed")) for s in stimuli]),
        "responded": _numbers([bool(s.get("responded")) for s in stimuli]),
        "latency_s": _matrix([s.get("latency_s") for s in stimuli], n_ch),
        "amplitude_uv": _matrix([s.get("amplitude_uv") for s in stimuli], n_ch),
        "conduction_velocity_m_per_s": _numbers(
            [s.get("conduction_velocity_m_per_s") for s in stimuli]
        ),
        **{key: _numbers([s.get(key) for s in stimuli]) for key in MOTION_COLUMNS},
    }
    fibres = {
        name: {
            "median": _number(f.get("median")),
            "median_all": _number(f.get("median_all")),
            "ci95": _numbers(list(f.get("ci95") or [None, None])),
            "n": float(f.get("n", 0)),
            "n_suspect": float(f.get("n_suspect", 0)),
            "determined": float(bool(f.get("determined"))),
            "reason": _text(f.get("reason")),
        }
        for name, f in results["fibres"].items()
    }
    channels = results.get("channels") or []
    headline = results["conduction_velocity_m_per_s"]
    return {
        "source": _text(results.get("source")),
        "sample_rate_hz": float(results["sample_rate_hz"]),
        "n_channels": float(n_ch),
        "conduction_velocity_m_per_s": {
            "median": _number(headline.get("median")),
            "ci95": _numbers(list(headline.get("ci95") or [None, None])),
            "n_stimuli": float(headline.get("n_stimuli", 0)),
            "fibre": _text(headline.get("fibre")),
        },
        "fibres": fibres,
        "channels": {
            key: _numbers([c.get(key) for c in channels]) for key in CHANNEL_SUMMARY
        },
        "stimuli": per_stimulus,
        "table": table,
        "results_json": json.dumps(results, allow_nan=False),
    }


def write_mat(results: dict[str, Any], path: Path) -> None:
    """The results as a MATLAB 5 .mat file."""
    from scipy.io import savemat

    savemat(path, matlab_variables(results), do_compression=True, oned_as="column")
