"""Propagation from the stimulation site, per electrode configuration, in the
offline pipeline (docs/analysis.md, "Per site").

A recording whose stimuli use more than one configuration ("C3-A4", "C3-R"),
or whose site (the cathode's position) lies inside the recording array, is
analysed a second time per stimulus about its site
(``analysis.bidirectional.analyse_bidirectional``): each volley's V, both
sides' velocities. The results gain ``sites``: per configuration, the site
the data place with its interval, each fibre's signed velocity per side with
its interval from the latencies pooled over the configuration's stimuli (or
"not determined" and why), and the selectivity (LGF without MGF; twitch at
one region against the others) from ``site_map``.

The maths is in ``analysis.bidirectional`` (pure); this module reads the
epochs and feeds it arrays.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from analysis.artifact import PulseMemory
from analysis.bidirectional import (
    TIMING_SD_S,
    analyse_bidirectional,
    at_head_end,
    candidate_sites_m,
    configuration_key,
    counted,
    fit_bidirectional,
    site_map,
    site_record,
)
from analysis.param_maps import cell_key
from analysis.propagation import PRE_MIN_S, PRE_S, search_window_s
from firmware_bridge.stimulus import parse_configuration
from rig.offline.load import Source

FIBRE_NAMES = ("mgf", "lgf")
# A pair's pooled latency needs the fibre detected there in at least this
# fraction of the configuration's volleys of that fibre (else it is left out).
MIN_DETECTED_FRACTION = 0.5
# The standard error of a median of n normal values is about this × SD / √n.
MEDIAN_SE_FACTOR = 1.2533


def cathode_site_m(configuration: str, stim_electrodes_m: Any) -> float | None:
    """The site of a configuration: its cathode's position (m from the head),
    or None when the electrodes' positions are not known.

    >>> cathode_site_m("C2-R", [0.004, 0.012, 0.025])
    0.025
    >>> cathode_site_m("C2-R", None) is None
    True
    """
    if stim_electrodes_m is None:
        return None
    try:
        cathode, _ = parse_configuration(configuration)
    except ValueError:
        return None
    if not 0 <= cathode < len(stim_electrodes_m):
        return None
    return float(stim_electrodes_m[cathode])


def over_sites(
    configurations: list[str], stim_electrodes_m: Any, pair_positions_m: Any
) -> bool:
    """Whether a recording needs the per-site analysis: more than one
    configuration, or a site strictly inside the recording array.

    >>> over_sites(["C0-A1"] * 3, [0.004, 0.012], [0.0375, 0.0575])
    False
    >>> over_sites(["C0-R", "C4-R"], None, [0.0375, 0.0575])
    True
    >>> over_sites(["C1-R"], [0.004, 0.05], [0.0375, 0.0575])
    True
    """
    distinct = set(configurations)
    if len(distinct) > 1:
        return True
    x = np.asarray(pair_positions_m, dtype=float)
    for c in distinct:
        site = cathode_site_m(c, stim_electrodes_m)
        if site is not None and x.min() < site < x.max():
            return True
    return False


def _epoch(source: Source, onset: int, post_s: float) -> tuple[np.ndarray, int] | None:
    """The epoch about one onset (µV) and the onset's row: ``PRE_S`` before it,
    ``PRE_MIN_S`` when the recording starts later (as analysis.pipeline)."""
    post = round(post_s * source.fs_hz)
    for pre_s in (PRE_S, PRE_MIN_S):
        pre = round(pre_s * source.fs_hz)
        epoch = source.read_uv(onset - pre, pre + post)
        if epoch is not None:
            return epoch, pre
    return None


def _pooled_fibre(
    fibre: str,
    rows: list[dict[str, Any]],
    x: np.ndarray,
    site_m: float | None,
) -> dict[str, Any]:
    """One fibre's V through its per-pair median latencies over the
    configuration's stimuli (each pair where it was detected in at least
    half of its volleys), the latency SD taken as the largest standard error
    of a pair's median (at least the fit's floor, 20 µs). Arrivals before the
    pulse and its blanking end on their pair are left out."""
    lat = []
    n_on_artifact = 0
    for r in rows:
        clear = r.get("artifact_end_s") or [0.0] * x.size
        for v in r["volleys"]:
            if v["fibre"] != fibre or not counted(v):
                continue  # another fibre's, or not counted (site_record)
            t = np.array([np.nan if a is None else a for a in v["latency_s"]])
            # timed on the artifact's remains (see site_record)
            on = np.isfinite(t) & (t <= np.asarray(clear, float))
            n_on_artifact += int(on.sum())
            t[on] = np.nan
            lat.append(t)
    out: dict[str, Any] = {
        "n_volleys": len(lat),
        "n_arrivals_on_artifact": n_on_artifact,
        "latency_s_median": None,
    }
    if not lat:
        out.update(fit=None, reason=f"no {fibre.upper()} volley in these stimuli")
        return out
    table = np.array(lat, dtype=float)
    median = np.full(table.shape[1], np.nan)
    # A median's own uncertainty: near the site a pair's arrival is timed on
    # the artifact's remains and scatters from stimulus to stimulus by far
    # more than the fit's floor; the V's intervals must carry that.
    timing_sd_s = TIMING_SD_S
    for k, column in enumerate(table.T):
        seen = column[np.isfinite(column)]
        if seen.size and seen.size >= MIN_DETECTED_FRACTION * len(lat):
            median[k] = np.median(seen)
            if seen.size >= 2:
                se = MEDIAN_SE_FACTOR * np.std(seen, ddof=1) / np.sqrt(seen.size)
                timing_sd_s = max(timing_sd_s, float(se))
    out["latency_s_median"] = [None if not np.isfinite(t) else float(t) for t in median]
    fit = fit_bidirectional(x, median, site_m=site_m, timing_sd_s=timing_sd_s)
    out["timing_sd_s"] = timing_sd_s
    out["fit"] = fit.to_dict()
    reason = fit.reason
    if reason and n_on_artifact:
        reason += (
            f" ({n_on_artifact} arrival(s) timed before the pulse and its "
            "blanking ended were left out)"
        )
    out["reason"] = reason or None
    return out


def _site_estimate(fibres: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The configuration's site as the data place it: the pooled V of the
    fibre with the most volleys whose site is determined, else why not."""
    best = None
    reasons = []
    for name, f in fibres.items():
        fit = f.get("fit")
        if fit is None:
            continue
        if fit["determined"] and fit["site_determined"]:
            if best is None or f["n_volleys"] > fibres[best]["n_volleys"]:
                best = name
        else:
            why = (
                f["reason"]
                if not fit["determined"]
                else fit["site_reason"] or "not determined"
            )
            reasons.append(f"{name.upper()}: {why}")
    if best is None:
        return {
            "site_m": None,
            "site_ci95_m": [None, None],
            "determined": False,
            "fibre": None,
            "reason": "; ".join(reasons) or "no volley in these stimuli",
        }
    fit = fibres[best]["fit"]
    return {
        "site_m": fit["site_m"],
        "site_ci95_m": fit["site_ci95_m"],
        "determined": True,
        "fibre": best,
        "reason": None,
    }


def analyse_sites(
    source: Source, records: list[dict[str, Any]], progress
) -> dict[str, Any]:
    """Analyse each analysed stimulus about its site (adds ``bidirectional``
    to its record) and return the results' ``sites`` section."""
    x = np.asarray(source.positions_m, dtype=float)
    stimuli = source.stimuli
    sites = [cathode_site_m(s.configuration, source.stim_electrodes_m) for s in stimuli]
    # the last possible arrival at the farthest pair, from any place searched
    far = [abs(x - s).max() for s in sites if s is not None]
    far += [np.abs(x - c).max() for c in candidate_sites_m(x)] if None in sites else []
    post_s = search_window_s(np.array([max(far, default=float(np.abs(x).max()))]))
    memory = PulseMemory()  # learnt in trial order, as the first pass
    bar = progress(None, "sites", total=len(stimuli))
    for stim, site, rec in zip(stimuli, sites, records, strict=True):
        bar.update(1)
        if not rec["analysed"]:
            continue
        got = _epoch(source, stim.onset_sample, post_s)
        if got is None:
            continue
        epoch, onset = got
        b = analyse_bidirectional(
            epoch,
            fs_hz=source.fs_hz,
            onset=onset,
            duration_s=stim.duration_s,
            pair_positions_m=x,
            site_m=site,
            clip_uv=source.clip_uv,
            mains_hz=source.mains_hz,
            onset_search_s=source.onset_search_s,
            pulse_memory=memory,
        )
        rec["bidirectional"] = site_record(b, site, x)
    bar.close()
    return sites_section(records, x)


def head_end(records: list[dict[str, Any]], pair_positions_m: Any) -> list[bool]:
    """Per record: whether the analysis from the head stands for it (the site
    its analysis about the site was about is at the head end, the online
    analysis's rule ``bidirectional.at_head_end``; no such analysis: True).

    >>> pairs = [0.0375, 0.0575, 0.0775, 0.0975]
    >>> head_end([{"bidirectional": {"site_m": 0.004}},
    ...           {"bidirectional": {"site_m": 0.067}}, {}], pairs)
    [True, False, True]
    """
    return [
        at_head_end((r.get("bidirectional") or {}).get("site_m"), pair_positions_m)
        for r in records
    ]


def results_head_end(results: dict[str, Any]) -> list[bool]:
    """``head_end`` of an analysis's ``stimuli``, its pairs from ``channels``."""
    stimuli = results.get("stimuli") or []
    pairs_m = [c["position_mm"] / 1e3 for c in results.get("channels") or []]
    return head_end(stimuli, pairs_m) if pairs_m else [True] * len(stimuli)


def site_cells(
    cells: list[dict[str, Any]], records: list[dict[str, Any]], head: list[bool]
) -> list[dict[str, Any]]:
    """The parameter map with each cell of a site along the body measured
    about its site: a stimulus evoked an AP where the analysis about its site
    found a fibre's volley (the *Per site* section's rule); the means from
    the head (AP amplitude per pair, velocity) are not this site's: null (its
    velocities are in ``sites``). Cells at the head are left as they are."""
    along: dict[tuple, list[dict[str, Any]]] = {}
    for r, ok in zip(records, head, strict=True):
        known = r.get("amplitude_vpp") is not None and r.get("duration_s") is not None
        if not ok and r.get("analysed") and known:
            along.setdefault(cell_key(r), []).append(r)
    out = []
    for cell in cells:
        rs = along.get(
            (cell["amplitude_vpp"], cell["duration_s"], cell["configuration"])
        )
        if rs is None:
            out.append(cell)
            continue
        fired = [
            {str(v.get("fibre")) for v in (r.get("bidirectional") or {}).get(
                "volleys", []) if counted(v)}
            for r in rs
        ]  # fmt: skip
        out.append(
            {
                **cell,
                "response_probability": float(np.mean([bool(f) for f in fired])),
                "timed_response_probability": None,
                "amplitude_uv_mean": [],
                "conduction_velocity_m_per_s": None,
                "conduction_velocity_m_per_s_by_fibre": {"mgf": None, "lgf": None},
                "fibre_probability": {
                    f: float(np.mean([f in got for got in fired]))
                    for f in ("mgf", "lgf")
                },
            }
        )
    return out


def sites_section(records: list[dict[str, Any]], x: np.ndarray) -> dict[str, Any]:
    """The results' ``sites``: one entry per configuration, from the records'
    ``bidirectional`` (records without one are left out)."""
    done = [r for r in records if r.get("bidirectional")]
    cells = site_map(
        [
            {
                "configuration": r["configuration"],
                "site_m": r["bidirectional"]["site_m"],
                "responded": any(counted(v) for v in r["bidirectional"]["volleys"]),
                "volleys": r["bidirectional"]["volleys"],
                "bidirectional": r["bidirectional"]["fits"],
                "region_peak_displacement_mm": r.get("region_peak_displacement_mm"),
            }
            for r in done
        ]
    )
    by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in done:
        by_config[str(r["configuration"])].append(r["bidirectional"])
    out = []
    for cell in cells:
        rows = by_config[cell["configuration"]]
        site = cell["site_m"]
        fibres = {f: _pooled_fibre(f, rows, x, site) for f in FIBRE_NAMES}
        out.append(
            {
                **cell,
                "site_inside_array": None
                if site is None
                else bool(x.min() < site < x.max()),
                "fibres_separable": any(r["fibres_separable"] for r in rows),
                "site_estimate": _site_estimate(fibres),
                "pooled": fibres,
            }
        )
    out.sort(key=lambda c: configuration_key(c["configuration"]))
    return {
        "pair_positions_m": [float(v) for v in x],
        "n_stimuli": len(done),
        "configurations": out,
    }
