"""The offline pipeline: every stimulus of a ``Source`` analysed (the same
per-stimulus analysis as online), fibres named across the recording, motion
tracked from the video, and the results gathered into the JSON-ready dict
that ``neurorig analyze`` writes (docs/analysis.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.correlation import ap_displacement_correlation
from analysis.displacement import (
    displacement,
    electrode_regions_mm,
    stimulus_motion,
)
from analysis.fibres import classify_fibres, headline
from analysis.param_maps import fit_recruitment, fit_strength_duration, parameter_map
from analysis.pipeline import analyse_stimuli
from rig.offline.load import Source


def _track(source: Source, progress) -> tuple[np.ndarray, np.ndarray] | None:
    """Region displacement series (mm) at each frame's sample number."""
    if source.frames is None or source.px_per_mm is None:
        return None
    from analysis.tracking import SegmentTracker

    lens = {}
    if source.lens and source.lens.get("camera_matrix") is not None:
        lens = {k: source.lens[k] for k in ("camera_matrix", "dist_coeffs")}
    tracker = SegmentTracker(
        px_per_mm=source.px_per_mm, origin_px=source.origin_px, **lens
    )
    positions = [
        tracker.process(frame) for frame in progress(source.frames, "tracking")
    ]
    width = max(p.size for p in positions)
    track = np.full((len(positions), width), np.nan)
    for i, p in enumerate(positions):
        track[i, : p.size] = p
    centres_mm = (source.head_on_raceway_m + source.positions_m) * 1000
    regions = electrode_regions_mm(centres_mm)
    # The live tracking's rule too (OnlineDisplacement): live = offline.
    moved = displacement(track, regions)
    series = np.column_stack([moved.region_mm, moved.body_mm])
    samples = np.asarray(source.frame_samples[: len(positions)], dtype=float)
    keep = samples >= 0
    return series[keep], samples[keep]


def analyse(source: Source, progress) -> dict[str, Any]:
    """Run the whole pipeline; return the JSON-ready results."""
    bar = progress(None, "stimuli", total=len(source.stimuli))
    responses = analyse_stimuli(
        source.read_uv,
        source.stimuli,
        fs_hz=source.fs_hz,
        positions_m=source.positions_m,
        progress=lambda i: bar.update(1),
        clip_uv=source.clip_uv,
        mains_hz=source.mains_hz,
        onset_search_s=source.onset_search_s,
    )
    bar.close()
    fibres = classify_fibres(responses)
    responses = fibres.responses
    motion = _track(source, progress)
    n_ch = source.n_channels
    records = []
    onsets_s = np.array([s.onset_sample for s in source.stimuli]) / source.fs_hz
    per_region = []
    if motion is not None:
        series, frame_samples = motion
        t = frame_samples / source.fs_hz
        source.motion_series = (t, series)
        per_region = [
            stimulus_motion(series[:, k], t, onsets_s) for k in range(series.shape[1])
        ]
    for i, (stim, resp) in enumerate(zip(source.stimuli, responses, strict=True)):
        rec: dict[str, Any] = {
            "time_s": stim.onset_sample / source.fs_hz,
            "sample": stim.onset_sample,
            "parameters": {
                "amplitude_vpp": _num(stim.amplitude_vpp),
                "delivered_vpp": _num(stim.delivered_vpp),
                "duration_s": _num(stim.duration_s),
                "pair": stim.pair,
                "polarity": stim.polarity,
            },
            "amplitude_vpp": _num(stim.amplitude_vpp),
            "duration_s": _num(stim.duration_s),
            "pair": stim.pair,
            "analysed": resp is not None,
        }
        if resp is not None:
            d = resp.to_dict()
            rec.update(
                responded=d["responded"],
                latency_s=d["latency_s"],
                amplitude_uv=d["amplitude_uv"],
                conduction_velocity_m_per_s=d["conduction_velocity_m_per_s"],
                volleys=d["volleys"],
                suspect_volleys=d["suspect_volleys"],
                fibres_recruited=[v["fibre"] for v in d["volleys"]],
                quality=d["quality"],
            )
        else:
            rec.update(
                responded=False,
                latency_s=[None] * n_ch,
                amplitude_uv=[None] * n_ch,
                conduction_velocity_m_per_s=None,
                volleys=[],
                suspect_volleys=[],
                fibres_recruited=[],
                quality=None,
            )
        if per_region:
            whole = per_region[-1][i]
            rec["peak_displacement_mm"] = _num(whole.peak_displacement_mm)
            rec["contraction_onset_latency_s"] = _num(whole.onset_latency_s)
            rec["time_to_peak_s"] = _num(whole.time_to_peak_s)
            rec["region_peak_displacement_mm"] = [
                _num(r[i].peak_displacement_mm) for r in per_region[:-1]
            ]
            rec["region_onset_latency_s"] = [
                _num(r[i].onset_latency_s) for r in per_region[:-1]
            ]
        else:
            rec["peak_displacement_mm"] = None
        records.append(rec)
    return _summarise(source, records, fibres, motion is not None)


def _summarise(source: Source, records, fibres, tracked: bool) -> dict[str, Any]:
    channels = []
    analysed = [r for r in records if r["analysed"]]
    for ch in range(source.n_channels):
        lat = [
            r["latency_s"][ch]
            for r in analysed
            if r["responded"] and r["latency_s"][ch] is not None
        ]
        amp = [
            r["amplitude_uv"][ch]
            for r in analysed
            if r["responded"] and r["amplitude_uv"][ch] is not None
        ]
        channels.append(
            {
                "index": ch,
                "position_mm": float(source.positions_m[ch] * 1000),
                "latency_s_median": float(np.median(lat)) if lat else None,
                "amplitude_uv_median": float(np.median(amp)) if amp else None,
                "response_probability": (len(lat) / len(analysed))
                if analysed
                else None,
            }
        )
    mappable = [
        r
        for r in analysed
        if r["amplitude_vpp"] is not None and r["duration_s"] is not None
    ]
    recruitment = []
    for duration in sorted({round(r["duration_s"], 6) for r in mappable}):
        rows = [r for r in mappable if round(r["duration_s"], 6) == duration]
        try:
            fit = fit_recruitment(
                [r["amplitude_vpp"] for r in rows], [r["responded"] for r in rows]
            )
        except ValueError:
            continue
        recruitment.append(
            {
                "duration_s": duration,
                "threshold_vpp": fit.threshold_vpp,
                "slope_vpp": fit.slope_vpp,
                "n": fit.n,
            }
        )
    sd = None
    if len(recruitment) >= 2:
        try:
            fit = fit_strength_duration(
                [r["duration_s"] for r in recruitment],
                [r["threshold_vpp"] for r in recruitment],
            )
            sd = {
                "rheobase_vpp": fit.rheobase_vpp,
                "chronaxie_s": fit.chronaxie_s,
                "rheobase_se_vpp": _num(fit.rheobase_se_vpp),
                "chronaxie_se_s": _num(fit.chronaxie_se_s),
            }
        except ValueError:
            sd = None
    return {
        "source": source.name,
        "sample_rate_hz": source.fs_hz,
        "n_channels": source.n_channels,
        "conduction_velocity_m_per_s": headline(fibres.fibres, len(analysed)),
        "fibres": {name: f.to_dict() for name, f in fibres.fibres.items()},
        "unclassified_volleys": fibres.unclassified,
        "channels": channels,
        "stimuli": records,
        "parameter_map": parameter_map(mappable),
        "recruitment": recruitment,
        "strength_duration": sd,
        "correlation": ap_displacement_correlation(analysed) if tracked else None,
        "motion": {"tracked": tracked},
    }


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
