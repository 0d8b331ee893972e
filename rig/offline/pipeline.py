"""The offline pipeline: every stimulus of a ``Source`` analysed (the same
per-stimulus analysis as online), fibres named across the recording, motion
tracked from the video, and the results gathered into the JSON-ready dict
that ``neurorig analyze`` writes (docs/analysis.md).

Motion is measured only on frames whose trigger is proven: those the optical
sync code placed (``frame_samples.csv`` source ``led_code``,
docs/optical-sync.md). A recording whose alignment is unproven (its metadata
has no ``frame_alignment``, or the code placed no frame) gets no motion
unless the caller accepts that (``accept_unproven_alignment``, the CLI's
``--accept-unproven-alignment``); then every frame with a sample is used and
the results say so (``motion.alignment.proven`` false).

The band positions come from the tracking saved while recording
(``tracking.jsonl``, docs/recording-format.md): the video is not opened. The
video is decoded and tracked again only with ``retrack`` (``--retrack``) or
when the recording has no usable saved tracking; ``motion.tracking`` says
which (``source``: ``saved`` or ``video``, and why)."""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.bidirectional import counted
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
from rig.offline.direction import check_direction
from rig.offline.load import Source
from rig.offline.sites import analyse_sites, head_end, over_sites, site_cells
from rig.recording.metadata import software_version

PROVEN_SOURCE = "led_code"  # the frame table's source of a frame the code placed
# What the JSON is (its first keys): a reader checks these before trusting the
# rest. The version counts changes that a reader of the old JSON would misread
# (docs/analysis.md, "JSON output"); new optional keys do not bump it.
ANALYSIS_FORMAT = "neurorig-analysis"
ANALYSIS_FORMAT_VERSION = 1


def frame_alignment_status(source: Source) -> dict[str, Any] | None:
    """How the source's frames were put on the board's clock, and whether
    that is proven (None without video)."""
    if source.frames is None or source.frame_samples is None:
        return None
    record = source.frame_alignment
    sources = list(source.frame_sources or [])
    n_frames = len(source.frame_samples)
    n_proven = sum(1 for s in sources if s == PROVEN_SOURCE)
    verdict = record.get("verdict") if record else None
    reason = None
    if record is None:
        reason = (
            "the recording does not say how its frames were aligned to the "
            "board's clock (no frame_alignment in its metadata: it was cut "
            "short, no LED code was in view, or it predates the optical sync); "
            "its frame samples come from arrival times, which a busy host gets "
            "wrong by whole frames"
        )
    elif n_proven == 0:
        notes = "; ".join(str(n) for n in record.get("notes") or [])
        reason = (
            f"the LED code placed none of its frames (verdict {verdict}"
            + (f": {notes}" if notes else "")
            + ")"
        )
    return {
        "proven": reason is None,
        "method": record.get("method") if record else None,
        "verdict": verdict,
        "n_frames": n_frames,
        "n_proven": n_proven,
        "mismatch_fraction": _num(record.get("mismatch_fraction")) if record else None,
        "reason": reason,
        "unproven_accepted": False,
    }


def _tracker_geometry(source: Source) -> tuple[float, dict]:
    """The tracker's origin (u, px) and lens for the stored frames: a cropped
    video's frames start at the crop's (left, top) of the camera image."""
    lens: dict = {}
    if source.lens and source.lens.get("camera_matrix") is not None:
        lens = {k: source.lens[k] for k in ("camera_matrix", "dist_coeffs")}
    origin = source.origin_px
    crop = source.video_crop_px
    if crop is not None:
        top, left = crop[0], crop[2]
        origin -= left
        if lens:
            matrix = np.array(lens["camera_matrix"], dtype=float)
            matrix[0, 2] -= left
            matrix[1, 2] -= top
            lens = {**lens, "camera_matrix": matrix}
    return origin, lens


def saved_tracking_problem(source: Source) -> str | None:
    """Why the recording's saved tracking cannot stand for re-tracking its
    video (None: it can)."""
    saved = source.saved()
    if saved is None:
        return "the recording has no saved tracking (tracking.jsonl)"
    if len(saved.frame_index) == 0:
        return "its saved tracking holds no frame"
    info = saved.info or {}
    saved_lens = info.get("lens")
    lens = (
        source.lens
        if source.lens and source.lens.get("camera_matrix") is not None
        else None
    )
    if (saved_lens is None) != (lens is None) or (
        lens is not None
        and not (
            np.allclose(saved_lens["camera_matrix"], lens["camera_matrix"])
            and np.allclose(saved_lens["dist_coeffs"], lens["dist_coeffs"])
        )
    ):
        return "its saved tracking used another lens model than this analysis"
    return None


def _positions(
    source: Source, progress, retrack: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Band positions along the body (mm, frames × bands) of the frames
    tracked, their frame numbers, and how they were found: the saved live
    tracking, or the video decoded and tracked again (``retrack``, or no
    usable saved tracking)."""
    n_frames = len(source.frame_samples) if source.frame_samples is not None else 0
    problem = "--retrack asked for it" if retrack else saved_tracking_problem(source)
    if problem is None:
        saved = source.saved()
        keep = saved.frame_index < n_frames
        # (the saved arrays as they are when every row is kept and the scale
        # is the same: read-only views, no copies of frames × bands)
        positions = (
            saved.positions_mm.view() if keep.all() else saved.positions_mm[keep]
        )
        frames = saved.frame_index.view() if keep.all() else saved.frame_index[keep]
        # Positions along the body are arc length / px_per_mm: another scale
        # (--px-per-mm, a calibration) rescales them exactly.
        live_scale = (saved.info or {}).get("px_per_mm") or source.px_per_mm
        rescale = float(live_scale) / float(source.px_per_mm)
        if rescale != 1.0:
            positions = positions * rescale
        positions.flags.writeable = False
        frames.flags.writeable = False
        return (
            positions,
            frames,
            {
                "source": "saved",
                "n_frames": n_frames,
                "n_frames_tracked": int(frames.size),
                "reason": None,
            },
        )
    from analysis.midline import MidlineTracker

    origin, lens = _tracker_geometry(source)
    # The live tracking's tracker: bands along the midline, mm from the head.
    tracker = MidlineTracker(px_per_mm=source.px_per_mm, origin_px=origin, **lens)
    rows = [tracker.process(frame) for frame in progress(source.frames, "tracking")]
    width = max((p.size for p in rows), default=0)
    positions = np.full((len(rows), width), np.nan)
    for i, p in enumerate(rows):
        positions[i, : p.size] = p
    return (
        positions,
        np.arange(len(rows)),
        {
            "source": "video",
            "n_frames": n_frames,
            "n_frames_tracked": len(rows),
            "reason": problem,
        },
    )


def _track(
    source: Source, progress, use: np.ndarray, retrack: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]] | None:
    """Region and whole-body displacement series (mm), region strain, each
    frame's sample number, for the frames in ``use`` (a mask over the
    frames), and how the frames were tracked."""
    if source.frames is None or source.px_per_mm is None:
        return None
    positions, frames, how = _positions(source, progress, retrack)
    if len(frames) == 0:
        return None
    regions = electrode_regions_mm(source.positions_m * 1000)  # from the head
    # The live tracking's rule too (OnlineDisplacement): live = offline.
    moved = displacement(positions, regions)
    series = np.column_stack([moved.region_mm, moved.body_mm])
    samples = np.asarray(source.frame_samples, dtype=float)[frames]
    keep = (samples >= 0) & use[frames]
    return series[keep], samples[keep], moved.strain[keep], how


def analyse(
    source: Source,
    progress,
    *,
    accept_unproven_alignment: bool = False,
    retrack: bool = False,
) -> dict[str, Any]:
    """Run the whole pipeline; return the JSON-ready results.

    Motion comes only from frames the optical sync proved, unless
    ``accept_unproven_alignment`` (see the module's docstring); from the
    tracking saved while recording, unless ``retrack`` (or there is none):
    then the video is decoded and tracked again.
    """
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
    per_site = over_sites(
        [s.configuration for s in source.stimuli],
        source.stim_electrodes_m,
        source.positions_m,
    )
    if not per_site:
        # Positions against the data: refused. Not over sites: a site inside
        # the array or behind it makes latencies fall along it, rightly.
        check_direction(source, responses)
    fibres = classify_fibres(responses)
    responses = fibres.responses
    alignment = frame_alignment_status(source)
    motion = None
    if alignment is not None and alignment["proven"]:
        proven = [s == PROVEN_SOURCE for s in source.frame_sources or []]
        motion = _track(source, progress, np.array(proven, dtype=bool), retrack)
    elif alignment is not None and accept_unproven_alignment:
        alignment["unproven_accepted"] = True
        everything = np.ones(alignment["n_frames"], dtype=bool)
        motion = _track(source, progress, everything, retrack)
    tracking = None
    n_ch = source.n_channels
    records = []
    onsets_s = np.array([s.onset_sample for s in source.stimuli]) / source.fs_hz
    per_region, per_strain = [], []
    groups = trains([s.pulse_index for s in source.stimuli])
    per_train: list[list[MotionResponse]] = []
    if motion is not None:
        series, frame_samples, strain, tracking = motion
        t = frame_samples / source.fs_hz
        source.motion_series = (t, series)
        per_region = [
            stimulus_motion(series[:, k], t, onsets_s) for k in range(series.shape[1])
        ]
        per_strain = [stimulus_motion(column, t, onsets_s) for column in strain.T]
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
                "configuration": stim.configuration,
                "polarity": stim.polarity,
            },
            "amplitude_vpp": _num(stim.amplitude_vpp),
            "duration_s": _num(stim.duration_s),
            "configuration": stim.configuration,
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
            # Strain's largest deviation from its trend (length change / rest length).
            rec["region_peak_strain"] = [
                _num(r[i].peak_displacement_mm) for r in per_strain
            ]
            rec["motion_note"] = whole.note
        else:
            rec["peak_displacement_mm"] = None
        records.append(rec)
    train_rows = _trains(groups, records, onsets_s, per_train)
    sites = analyse_sites(source, records, progress) if per_site else None
    # Over sites, the analysis from the head stands only for stimuli at the
    # head end: the recording's summary and fits are theirs, and a
    # map cell along the body says what the analysis about its site found.
    head = head_end(records, source.positions_m)  # all True unless over sites
    for rec, ok in zip(records, head, strict=True):
        if not ok and rec.get("bidirectional"):
            # a fibre fired: whichever analysis saw it (the one about its site)
            volleys = rec["bidirectional"]["volleys"]
            rec["ap_evoked"] = any(counted(v) for v in volleys)
    results = _results(
        source, responses, records, fibres, motion is not None, train_rows, head
    )
    if sites is not None:
        results["sites"] = sites
        results["parameter_map"] = site_cells(results["parameter_map"], records, head)
    results["motion"]["alignment"] = alignment
    results["motion"]["tracking"] = tracking
    return results


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
    head: list[bool],
) -> dict[str, Any]:
    """The JSON-ready results: the summary maths (``analysis.summary``) over the
    analysed stimuli the analysis from the head stands for (``head``), beside
    the per-stimulus records."""
    n_ch = source.n_channels
    rows = [
        (stim, resp)
        for stim, resp, ok in zip(source.stimuli, responses, head, strict=True)
        if resp is not None and ok
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
        "format": ANALYSIS_FORMAT,
        "format_version": ANALYSIS_FORMAT_VERSION,
        "software": {"name": "neurorig", "version": software_version()},
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
        "correlation": _correlation(
            [r for r, ok in zip(records, head, strict=True) if ok and r["analysed"]],
            source.positions_m,
            n_ch,
        )
        if tracked
        else None,
        "trains": train_rows,
        "motion": {
            "tracked": tracked,
            # Each pair's body region: positions along the body, mm from the head.
            "regions_mm_from_head": [
                [lo, hi] for lo, hi in electrode_regions_mm(source.positions_m * 1000)
            ],
        },
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
