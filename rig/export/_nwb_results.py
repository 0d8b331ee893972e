"""The video and what was measured, as NWB: the video as an external-file
``ImageSeries`` stamped on the board clock, segment displacement as
``BehavioralTimeSeries``, the per-stimulus analysis and the fibres' velocities
as tables in the ``ecephys`` processing module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.common import DynamicTable, VectorData
from pynwb import NWBFile, TimeSeries
from pynwb.behavior import BehavioralTimeSeries
from pynwb.image import ImageSeries

from rig.recording import Recording

VIDEO_FILE = "video.mkv"


def frame_times_s(rec: Recording, first_sample: int) -> np.ndarray:
    """Each video frame's time on the board clock, s from the first sample;
    NaN for a frame the frame table could not place (not determined)."""
    samples = rec.frame_samples
    assert samples is not None
    times = (samples - first_sample) / rec.sample_rate_hz
    return np.where(samples >= 0, times, np.nan)


def add_video(
    nwbfile: NWBFile, rec: Recording, out: Path, first_sample: int
) -> tuple[int, list[str]]:
    """The video, referenced (not copied) by its path relative to the NWB
    file; returns (frames, warnings)."""
    if not len(rec.frame_times) or rec.frame_samples is None:
        return 0, []
    video = (rec.path / VIDEO_FILE).resolve()
    warnings = []
    try:
        external = os.path.relpath(video, out.resolve().parent)
    except ValueError:  # another drive (Windows): no relative path exists
        external = str(video)
        warnings.append(
            f"the video is referenced by its absolute path {video} (DANDI wants "
            "a path relative to the NWB file: keep them on one drive)"
        )
    times = frame_times_s(rec, first_sample)
    unplaced = int(np.sum(np.isnan(times)))
    report = (rec.events_of("frame_report") or [{}])[-1]
    source = report.get("timing_source", "unknown")
    meta = rec.metadata.get("video") or {}
    camera = rec.metadata.get("camera") or {}
    device = nwbfile.create_device(
        name="camera",
        description=f"camera above the raceway (source {camera.get('source')}, "
        f"triggered by the board at {camera.get('trigger_rate_hz')} Hz)",
    )
    dimension = (
        [int(meta["width"]), int(meta["height"])]
        if meta.get("width") and meta.get("height")
        else None
    )
    nwbfile.add_acquisition(
        ImageSeries(
            name="video",
            description=(
                f"the camera above the raceway: grayscale, lossless FFV1 in "
                f"Matroska, every frame a key frame; timestamps from the "
                f"recording's frame table on the board clock (timing source "
                f"{source}; docs/recording-format.md); {unplaced} of "
                f"{len(times)} frames could not be placed on it: NaN"
            ),
            external_file=[external],
            format="external",
            starting_frame=[0],
            timestamps=times,
            unit="n.a.",
            dimension=dimension,
            device=device,
        )
    )
    if unplaced:
        warnings.append(
            f"{unplaced} of {len(times)} video frames have no board sample "
            "(frame table): their timestamps are NaN"
        )
    return len(times), warnings


def add_displacement(
    nwbfile: NWBFile, motion: tuple[np.ndarray, np.ndarray], fs: float, first: int
) -> None:
    """Tracked displacement of each body region and the whole body (m), at
    the frames placed on the board clock."""
    times_s, series_mm = motion
    samples = np.rint(np.asarray(times_s) * fs).astype(np.int64)
    n_regions = series_mm.shape[1] - 1
    module = nwbfile.create_processing_module(
        name="behavior", description="segment motion tracked in the video"
    )
    module.add(
        BehavioralTimeSeries(
            name="BehavioralTimeSeries",
            time_series=TimeSeries(
                name="segment_displacement",
                description=(
                    f"displacement along the raceway from the resting position, "
                    f"columns 0–{n_regions - 1}: the body region around each "
                    f"recording pair (head to tail), column {n_regions}: the "
                    "whole body (neurorig analysis.displacement)"
                ),
                data=np.asarray(series_mm, dtype=float) / 1e3,
                unit="m",
                timestamps=(samples - first) / fs,
            ),
        )
    )


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values])


def _per_channel(records: list[dict], key: str, n_ch: int, scale: float) -> np.ndarray:
    rows = [r.get(key) or [None] * n_ch for r in records]
    return np.array([_floats(row) for row in rows]).reshape(-1, n_ch) * scale


def _fibre_velocity(record: dict, fibre: str) -> float:
    for volley in record.get("volleys") or []:
        if volley.get("fibre") == fibre:
            return float(volley["conduction_velocity_m_per_s"])
    return float("nan")


# Columns of the per-stimulus table: name -> description (SI units).
RESPONSE_COLUMNS = {
    "stimulus": "row of the stimuli events table",
    "sample": "board sample number of the stimulus onset",
    "time_s": "onset, s from the recording's first sample",
    "analysed": "the epoch was whole and analysed",
    "responded": "a propagating action potential was found",
    "latency_s": "first volley's latency at each recording pair, s (NaN: none)",
    "ap_amplitude_v": "first volley's amplitude at each pair, V (NaN: none)",
    "conduction_velocity_m_per_s": "first volley's conduction velocity, m/s",
    "mgf_velocity_m_per_s": "medial giant fibre's volley velocity, m/s (NaN: none)",
    "lgf_velocity_m_per_s": "lateral giant fibres' volley velocity, m/s (NaN: none)",
    "peak_displacement_m": "peak whole-body displacement after it, m (NaN: no video)",
}
FIBRE_COLUMNS = {
    "fibre": "mgf (medial giant fibre) or lgf (lateral giant fibres)",
    "determined": "the data support a velocity",
    "median_m_per_s": "median conduction velocity, m/s (NaN: not determined)",
    "ci95_low_m_per_s": "95 % interval of the median, low end, m/s",
    "ci95_high_m_per_s": "95 % interval of the median, high end, m/s",
    "n": "sweeps that recruited the fibre",
    "reason": "why not determined ('' when determined)",
}


def _responses(records: list[dict], n_ch: int, fs: float, first: int) -> dict:
    samples = np.array([int(r["sample"]) for r in records], dtype=np.int64)
    return {
        "stimulus": np.arange(len(records)),
        "sample": samples,
        "time_s": (samples - first) / fs,
        "analysed": np.array([bool(r["analysed"]) for r in records]),
        "responded": np.array([bool(r["responded"]) for r in records]),
        "latency_s": _per_channel(records, "latency_s", n_ch, 1.0),
        "ap_amplitude_v": _per_channel(records, "amplitude_uv", n_ch, 1e-6),
        "conduction_velocity_m_per_s": _floats(
            [r.get("conduction_velocity_m_per_s") for r in records]
        ),
        "mgf_velocity_m_per_s": np.array([_fibre_velocity(r, "mgf") for r in records]),
        "lgf_velocity_m_per_s": np.array([_fibre_velocity(r, "lgf") for r in records]),
        "peak_displacement_m": _floats([r.get("peak_displacement_mm") for r in records])
        / 1e3,
    }


def _fibres(fibres: dict[str, dict]) -> dict:
    names = sorted(fibres)
    ci = [fibres[n].get("ci95") or [None, None] for n in names]
    return {
        "fibre": names,
        "determined": np.array([bool(fibres[n].get("determined")) for n in names]),
        "median_m_per_s": _floats([fibres[n].get("median") for n in names]),
        "ci95_low_m_per_s": _floats([c[0] for c in ci]),
        "ci95_high_m_per_s": _floats([c[1] for c in ci]),
        "n": np.array([int(fibres[n].get("n") or 0) for n in names], dtype=np.int64),
        "reason": [str(fibres[n].get("reason") or "") for n in names],
    }


def _table(name: str, description: str, texts: dict, data: dict) -> DynamicTable:
    return DynamicTable(
        name=name,
        description=description,
        columns=[
            VectorData(name=key, description=text, data=data[key])
            for key, text in texts.items()
        ],
    )


def add_analysis(
    nwbfile: NWBFile, results: dict[str, Any], fs: float, first: int
) -> None:
    """``neurorig analyze``'s results: one row per stimulus (in the order of
    the stimuli table) and one per giant fibre, SI units."""
    module = nwbfile.create_processing_module(
        name="ecephys",
        description="neurorig analyze (docs/analysis.md): action potentials "
        "per stimulus, their propagation and the giant fibres' velocities",
    )
    records = results["stimuli"]
    module.add(
        _table(
            "stimulus_responses",
            "per stimulus: latency and amplitude at each pair, conduction "
            "velocity per fibre, twitch",
            RESPONSE_COLUMNS,
            _responses(records, int(results["n_channels"]), fs, first),
        )
    )
    module.add(
        _table(
            "fibres",
            "conduction velocity of each giant fibre over the recording: median "
            "with its 95 % interval, or not determined and why",
            FIBRE_COLUMNS,
            _fibres(results["fibres"]),
        )
    )
