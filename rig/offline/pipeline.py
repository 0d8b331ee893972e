"""The offline pipeline: every stimulus of a ``Source`` analysed (the same
per-stimulus analysis as online), fibres named across the recording, motion
tracked from the video, and the results gathered into the JSON-ready dict
that ``neurorig analyze`` writes (docs/analysis.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.correlation import ap_displacement_correlation
from analysis.displacement import (
    REGION_HALF_WIDTH_MM,
    MotionResponse,
    displacement,
    electrode_regions_mm,
    stimulus_motion,
    train_motion,
    trains,
)
from analysis.fibres import FibreClassification, classify_fibres, headline
from analysis.param_maps import parameter_map
from analysis.pipeline import analyse_stimuli
from analysis.propagation import StimulusResponse
from analysis.summary import summarise
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
    groups = trains([s.pulse_index for s in source.stimuli])
    per_train: list[list[MotionResponse]] = []
    if motion is not None:
        series, frame_samples = motion
        t = frame_samples / source.fs_hz
        source.motion_series = (t, series)
        per_region = [
            stimulus_motion(series[:, k], t, onsets_s) for k in range(series.shape[1])
        ]
        # A train's pulses sum into one twitch: measured as a unit.
        firsts = np.array([onsets_s[a] for a, _ in groups])
        lasts = np.array([onsets_s[b - 1] for _, b in groups])
        per_train = [
            train_motion(series[:, k], t, firsts, lasts) for k in range(series.shape[1])
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
            "pulse_index": stim.pulse_index,
            "analysed": resp is not None,
        }
        if resp is not None:
            d = resp.to_dict()
            rec.update(
                responded=d["responded"],
                ap_evoked=_evoked(resp),
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
                ap_evoked=False,
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
            rec["motion_note"] = whole.note
        else:
            rec["peak_displacement_mm"] = None
        records.append(rec)
    train_rows = _trains(groups, records, onsets_s, per_train)
    return _results(source, responses, records, fibres, motion is not None, train_rows)


def _trains(
    groups: list[tuple[int, int]],
    records: list[dict[str, Any]],
    onsets_s: np.ndarray,
    per_train: list[list[MotionResponse]],
) -> list[dict[str, Any]]:
    """The JSON's ``trains``: every train of more than one pulse, its APs per
    pulse and its summed twitch measured as one response."""
    out = []
    for k, (first, stop) in enumerate(groups):
        if stop - first < 2:
            continue
        pulses = records[first:stop]
        row: dict[str, Any] = {
            "first_stimulus": first,
            "n_pulses": stop - first,
            "time_s": float(onsets_s[first]),
            "rate_hz": float(
                (stop - first - 1) / (onsets_s[stop - 1] - onsets_s[first])
            )
            if onsets_s[stop - 1] > onsets_s[first]
            else None,
            "parameters": pulses[0]["parameters"],
            "responded": [bool(p["responded"]) for p in pulses],
        }
        if per_train:
            whole = per_train[-1][k]
            row.update(
                peak_displacement_mm=_num(whole.peak_displacement_mm),
                contraction_onset_latency_s=_num(whole.onset_latency_s),
                time_to_peak_s=_num(whole.time_to_peak_s),
                region_peak_displacement_mm=[
                    _num(r[k].peak_displacement_mm) for r in per_train[:-1]
                ],
            )
        else:
            row["peak_displacement_mm"] = None
        out.append(row)
    return out


def _results(
    source: Source,
    responses: list[StimulusResponse | None],
    records: list[dict[str, Any]],
    fibres: FibreClassification,
    tracked: bool,
    train_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON-ready results: the summary maths (``analysis.summary``) over the
    analysed stimuli, beside the per-stimulus records."""
    n_ch = source.n_channels
    rows = [
        (stim, resp)
        for stim, resp in zip(source.stimuli, responses, strict=True)
        if resp is not None
    ]
    summary = summarise(
        latency_s=np.array([r.latency_s for _, r in rows], float).reshape(-1, n_ch),
        amplitude_uv=np.array([r.amplitude_uv for _, r in rows], float).reshape(
            -1, n_ch
        ),
        responded=np.array([r.responded for _, r in rows], bool),
        amplitudes_vpp=np.array([s.amplitude_vpp for s, _ in rows], float),
        durations_s=np.array([s.duration_s for s, _ in rows], float),
        positions_m=source.positions_m,
        onsets_s=np.array([s.onset_sample for s, _ in rows], float) / source.fs_hz,
        pulse_index=np.array([s.pulse_index for s, _ in rows], int),
        delivered_vpp=np.array([s.delivered_vpp for s, _ in rows], float),
        evoked=np.array([_evoked(r) for _, r in rows], bool),
    ).to_dict()
    analysed = [r for r in records if r["analysed"]]
    mappable = [
        r
        for r in analysed
        if r["amplitude_vpp"] is not None and r["duration_s"] is not None
    ]
    return {
        "source": source.name,
        "sample_rate_hz": source.fs_hz,
        "n_channels": n_ch,
        "conduction_velocity_m_per_s": headline(fibres.fibres, len(analysed)),
        "fibres": {name: f.to_dict() for name, f in fibres.fibres.items()},
        "unclassified_volleys": fibres.unclassified,
        "channels": summary["channels"],
        "stimuli": records,
        "parameter_map": parameter_map(mappable),
        "recruitment": summary["recruitment"],
        "strength_duration": summary["strength_duration"],
        "habituation": summary["habituation"],
        "fit_amplitudes": summary["fit_amplitudes"],
        "correlation": _correlation(analysed, source.positions_m, n_ch)
        if tracked
        else None,
        "trains": train_rows,
        "motion": {"tracked": tracked},
    }


def _correlation(
    analysed: list[dict[str, Any]], positions_m: np.ndarray, n_ch: int
) -> dict[str, Any]:
    """AP against displacement (``analysis.correlation``) over the analysed
    stimuli's records."""

    def table(key: str, width: int) -> np.ndarray:
        out = np.full((len(analysed), width), np.nan)
        for i, r in enumerate(analysed):
            for k, v in enumerate((r.get(key) or [])[:width]):
                out[i, k] = np.nan if v is None else v
        return out

    n_regions = max(
        (len(r.get("region_peak_displacement_mm") or []) for r in analysed), default=0
    )
    return ap_displacement_correlation(
        responded=np.array([bool(r["responded"]) for r in analysed], bool),
        amplitude_uv=table("amplitude_uv", n_ch),
        latency_s=table("latency_s", n_ch),
        region_peak_displacement_mm=table("region_peak_displacement_mm", n_regions),
        region_onset_latency_s=table("region_onset_latency_s", n_regions),
        peak_displacement_mm=np.array(
            [
                np.nan
                if r.get("peak_displacement_mm") is None
                else r["peak_displacement_mm"]
                for r in analysed
            ],
            float,
        ),
        positions_mm=np.asarray(positions_m, float) * 1000,
        region_half_width_mm=REGION_HALF_WIDTH_MM,
    ).to_dict()


def _evoked(response: StimulusResponse) -> bool:
    """A fibre fired: a named volley, whether or not its timing was clean (a
    spike under the pulse's artifact is still a spike: the fits count it)."""
    return bool(response.responded or response.suspect_volleys)


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
