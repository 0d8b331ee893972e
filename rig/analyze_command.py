"""Body of ``neurorig analyze``: a recording (or Spike Recorder WAV) -> JSON + report."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.artifact import MARKER_ONSET_SEARCH_S, ONSET_SEARCH_S
from analysis.correlation import ap_displacement_correlation
from analysis.displacement import (
    electrode_regions_mm,
    region_displacement,
    stimulus_motion,
)
from analysis.fibres import classify_fibres, headline
from analysis.param_maps import fit_recruitment, fit_strength_duration, parameter_map
from analysis.pipeline import Stimulus, analyse_stimuli
from rig.cli._common import fail, out_folder_problem


@dataclass
class Source:
    """Everything the pipeline needs, read from a recording or a WAV."""

    name: str
    fs_hz: float
    n_channels: int
    positions_m: np.ndarray  # pair centres along the body
    stimuli: list[Stimulus]
    read_uv: Any  # (first_sample, n) -> µV array or None
    first_sample: int = 0
    frames: Any = None  # iterable of frames, or None
    motion_series: Any = (
        None  # (frame times s, (n_frames, n_regions + 1) mm), for reports
    )
    frame_samples: np.ndarray | None = None
    head_on_raceway_m: float = 0.0
    px_per_mm: float | None = None
    origin_px: float = 0.0
    lens: dict | None = None  # camera calibration: camera_matrix, dist_coeffs
    clip_uv: Any = None  # the ADC's rail in µV (per channel or one): clipped there
    mains_hz: float | None = None  # None: 50 or 60 Hz, whichever fits
    onset_search_s: float = ONSET_SEARCH_S  # markers: MARKER_ONSET_SEARCH_S


INT16_RAIL = 32767  # the largest count of a 16-bit sample


def _positions(option: str | None, metadata_positions) -> np.ndarray | None:
    if option:
        try:
            return np.array([float(v) for v in option.split(",")]) / 1000.0
        except ValueError:
            raise ValueError(
                f"--electrode-positions-mm {option!r}: give numbers separated by commas, "
                "e.g. 37.5,57.5,77.5,97.5"
            ) from None
    return None if metadata_positions is None else np.asarray(metadata_positions)


def load_recording(path: Path, args: argparse.Namespace) -> Source:
    """A neurorig recording folder."""
    import rig.recording

    rec = rig.recording.open(path)
    meta = rec.metadata
    geometry = meta.get("geometry") or {}
    positions = _positions(args.electrode_positions_mm, geometry.get("pair_centres_m"))
    if positions is None:
        raise ValueError(
            f"{path}: the recording's metadata has no electrode geometry; give "
            "--electrode-positions-mm A,B,C,D (pair centres along the body, mm)"
        )
    uv_per_count = _uv_per_count(meta)
    numbers = rec.sample_numbers()

    def read_uv(first: int, n: int):
        row = int(np.searchsorted(numbers, first))
        if (
            row + n > len(numbers)
            or numbers[row] != first
            or numbers[row + n - 1] != first + n - 1
        ):
            return None  # part of the epoch was lost
        return np.asarray(rec.samples[row : row + n], dtype=np.float64) * uv_per_count

    stimuli = [
        # Map on the requested levels (the protocol's grid); keep what was delivered.
        Stimulus(
            e["sample"],
            e.get("requested_vpp", e.get("commanded_vpp", e.get("amplitude_vpp"))),
            e["duration_s"],
            e.get("pair", 0),
            e.get("polarity", 0),
            e.get("amplitude_vpp", math.nan),
        )
        for e in rec.events_of("stim_delivered")
    ]
    camera = geometry.get("camera") or {}
    has_video = len(rec.frame_times) > 0 and rec.frame_samples is not None
    return Source(
        name=str(path),
        fs_hz=rec.sample_rate_hz,
        n_channels=rec.n_channels,
        positions_m=positions,
        stimuli=stimuli,
        read_uv=read_uv,
        first_sample=int(numbers[0]) if numbers.size else 0,
        frames=rec.frames if has_video else None,
        frame_samples=rec.frame_samples if has_video else None,
        head_on_raceway_m=float(geometry.get("head_on_raceway_m", 0.0)),
        px_per_mm=_px_per_mm(args, meta, camera),
        origin_px=float((camera.get("origin_px") or [0.0])[0]),
        lens=None if args.px_per_mm else _calibration(meta, "camera"),
        clip_uv=INT16_RAIL * np.abs(uv_per_count),
    )


def _calibration(meta: dict, kind: str) -> dict | None:
    calibrations = meta.get("calibrations") or {}
    found = calibrations.get(kind) if isinstance(calibrations, dict) else None
    return found if isinstance(found, dict) else None


def _px_per_mm(args: argparse.Namespace, meta: dict, camera: dict) -> float | None:
    """--px-per-mm, else the recording's camera calibration, else nominal optics."""
    if args.px_per_mm:
        return float(args.px_per_mm)
    calibrated = _calibration(meta, "camera")
    if calibrated and calibrated.get("px_per_mm"):
        return float(calibrated["px_per_mm"])
    if camera.get("px_per_mm"):
        print(
            "calibration warning: no camera calibration in the recording; "
            f"displacement uses the nominal {camera['px_per_mm']} px/mm",
            file=sys.stderr,
        )
        return float(camera["px_per_mm"])
    return None


def _uv_per_count(meta: dict) -> Any:
    """µV per count: the gain calibration's (one per channel), else nominal."""
    gain = _calibration(meta, "gain")
    if gain and gain.get("uv_per_count"):
        return np.asarray(gain["uv_per_count"], dtype=np.float64)
    nominal = (meta.get("acquisition") or {}).get("volts_per_count_nominal")
    if nominal is None:
        raise ValueError(
            "the recording has no gain: metadata lacks volts_per_count_nominal"
        )
    return float(nominal) * 1e6


def load_wav(path: Path, args: argparse.Namespace) -> Source:
    """A Backyard Brains Spike Recorder WAV + events pair."""
    from rig.spike_recorder import read_marker_map, read_spike_recorder, select_stimuli

    if not args.electrode_positions_mm:
        raise ValueError(
            f"{path}: a WAV carries no electrode geometry; give --electrode-positions-mm "
            "A,B,... (one position per channel along the body, mm)"
        )
    data = read_spike_recorder(path)
    positions = _positions(args.electrode_positions_mm, None)
    if positions.size != data.samples.shape[1]:
        raise ValueError(
            f"--electrode-positions-mm gives {positions.size} positions for "
            f"{data.samples.shape[1]} channels in {path.name}"
        )
    wanted = _marker_ids(getattr(args, "stimulus_markers", None))
    markers = select_stimuli(data, wanted)
    if markers.ignored:
        ignored = ", ".join(f"{k!r} ×{n}" for k, n in sorted(markers.ignored.items()))
        print(
            f"note: {sum(markers.ignored.values())} marker lines are not stimuli and "
            f"were ignored ({ignored}); choose with --stimulus-markers ID[,ID]",
            file=sys.stderr,
        )
    if not markers.ids:
        raise ValueError(
            f"{path}: no stimulus markers"
            + (f" with IDs {','.join(wanted)}" if wanted else " (whole-number IDs)")
            + " in the events file"
        )
    mapping = (
        read_marker_map(args.marker_map) if getattr(args, "marker_map", None) else {}
    )
    given_ms = getattr(args, "pulse_duration_ms", None)
    fs = data.sample_rate_hz
    stimuli = []
    for marker, t in zip(markers.ids, markers.times_s, strict=True):
        params = mapping.get(marker)
        if params is None and mapping:
            raise ValueError(
                f"{args.marker_map}: marker ID {marker!r} is in the events file but "
                "not in the marker map"
            )
        duration = params.duration_s if params and params.duration_s else None
        if duration is None and given_ms:
            duration = given_ms / 1000.0
        stimuli.append(
            Stimulus(
                round(t * fs),
                params.amplitude_vpp if params else math.nan,
                math.nan if duration is None else duration,
                params.pair if params else 0,
            )
        )
    scale = args.uv_per_count
    x = data.samples

    def read_uv(first: int, n: int):
        if first < 0 or first + n > x.shape[0]:
            return None
        return x[first : first + n].astype(np.float64) * scale

    return Source(
        str(path), fs, x.shape[1], positions, stimuli, read_uv,
        clip_uv=INT16_RAIL * abs(scale), onset_search_s=MARKER_ONSET_SEARCH_S,
    )  # fmt: skip


def _marker_ids(option: str | None) -> list[str] | None:
    if not option:
        return None
    ids = [v.strip() for v in option.split(",") if v.strip()]
    if not ids:
        raise ValueError(f"--stimulus-markers {option!r}: give marker IDs, e.g. 1,2")
    return ids


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
    disp, _ = region_displacement(track, regions)
    whole = np.nanmean(track - np.nanmean(track[:3], axis=0), axis=1)
    series = np.column_stack([disp, whole])
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


def _progress_factory(enabled: bool):
    from tqdm import tqdm

    def progress(iterable, desc, total=None):
        if iterable is None:
            return tqdm(total=total, desc=desc, disable=not enabled, unit="stim")
        return tqdm(iterable, desc=desc, disable=not enabled, unit="frame")

    return progress


def run_analyze(args: argparse.Namespace) -> int:
    """Load, analyse, write JSON and report, print a summary."""
    from rig.spike_recorder import SpikeRecorderError

    path = Path(args.path)
    problem = out_folder_problem(args.report, "--report")
    if args.json_out and Path(args.json_out).is_dir():
        problem = f"--json {args.json_out} is a folder; allowed: a file name"
    if problem is not None:  # before the analysis, not after it
        return fail(problem)
    try:
        if path.suffix.lower() == ".wav":
            source = load_wav(path, args)
        elif path.is_dir():
            source = load_recording(path, args)
        else:
            return fail(
                f"{path}: give a neurorig recording folder or a Spike Recorder .wav"
            )
    except (ValueError, OSError, SpikeRecorderError) as exc:
        return fail(str(exc))
    source.mains_hz = getattr(args, "mains_hz", None)
    results = analyse(source, _progress_factory(not args.quiet))
    if args.json_out:
        # allow_nan=False: a NaN left anywhere is a bug, not invalid JSON on disk
        text = json.dumps(results, indent=1, allow_nan=False)
        Path(args.json_out).write_text(text + "\n")
    if args.report:
        from rig.report import write_report

        index = write_report(results, source, Path(args.report))
        print(f"report: {index}")
    print(summary_line(results))
    return 0


def summary_line(results: dict[str, Any]) -> str:
    """The CLI's closing line: stimuli, and each fibre's velocity or why not."""
    n = len(results["stimuli"])
    responded = sum(1 for r in results["stimuli"] if r.get("responded"))
    parts = []
    for name, label in (("mgf", "MGF"), ("lgf", "LGF")):
        f = results["fibres"][name]
        if f["determined"]:
            low, high = f["ci95"]
            parts.append(
                f"{label} {f['median']:.2f} m/s (95 % CI {low:.2f}–{high:.2f}, "
                f"{f['n']} sweeps)"
            )
        elif f["n"]:
            parts.append(f"{label} not determined ({f['reason']})")
        else:
            parts.append(f"{label} not recruited")
    return f"{n} stimuli, {responded} with a propagating AP; " + "; ".join(parts)
