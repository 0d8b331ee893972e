"""Loaders for the offline pipeline: a neurorig recording folder or a Backyard
Brains Spike Recorder WAV, each turned into a ``Source`` (what the pipeline
needs: sample rate, positions, stimuli, a reader of µV epochs, video)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.artifact import MARKER_ONSET_SEARCH_S, ONSET_SEARCH_S
from analysis.pipeline import Stimulus
from rig.rig_file import positions_from_option


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


def load_recording(
    path: Path,
    *,
    electrode_positions_mm: str | None = None,
    px_per_mm: float | None = None,
) -> Source:
    """A neurorig recording folder (options as ``neurorig analyze`` names them)."""
    import rig.recording

    rec = rig.recording.open(path)
    meta = rec.metadata
    geometry = meta.get("geometry") or {}
    if electrode_positions_mm:
        positions = np.array(
            positions_from_option(electrode_positions_mm, rec.n_channels)
        )
    elif geometry.get("pair_centres_m") is not None:
        positions = np.asarray(geometry["pair_centres_m"], dtype=float)
    else:
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
            e.get("pulse_index", 0),
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
        px_per_mm=_px_per_mm(px_per_mm, meta, camera),
        origin_px=float((camera.get("origin_px") or [0.0])[0]),
        lens=None if px_per_mm else _calibration(meta, "camera"),
        clip_uv=INT16_RAIL * np.abs(uv_per_count),
    )


def _calibration(meta: dict, kind: str) -> dict | None:
    calibrations = meta.get("calibrations") or {}
    found = calibrations.get(kind) if isinstance(calibrations, dict) else None
    return found if isinstance(found, dict) else None


def _px_per_mm(given: float | None, meta: dict, camera: dict) -> float | None:
    """--px-per-mm, else the recording's camera calibration, else nominal optics."""
    if given:
        return float(given)
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


def load_wav(
    path: Path,
    *,
    electrode_positions_mm: str | None,
    uv_per_count: float = 1.0,
    pulse_duration_ms: float | None = None,
    stimulus_markers: str | None = None,
    marker_map: str | Path | None = None,
) -> Source:
    """A Backyard Brains Spike Recorder WAV + events pair (options as
    ``neurorig analyze`` names them)."""
    from rig.offline.spike_recorder import (
        read_marker_map,
        read_spike_recorder,
        select_stimuli,
    )

    if not electrode_positions_mm:
        raise ValueError(
            f"{path}: a WAV carries no electrode geometry; give --electrode-positions-mm "
            "A,B,... (one position per channel along the body, mm)"
        )
    data = read_spike_recorder(path)
    n_channels = data.samples.shape[1]
    positions = np.array(positions_from_option(electrode_positions_mm, n_channels))
    wanted = _marker_ids(stimulus_markers)
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
    mapping = read_marker_map(marker_map) if marker_map else {}
    given_ms = pulse_duration_ms
    fs = data.sample_rate_hz
    stimuli = []
    for marker, t in zip(markers.ids, markers.times_s, strict=True):
        params = mapping.get(marker)
        if params is None and mapping:
            raise ValueError(
                f"{marker_map}: marker ID {marker!r} is in the events file but "
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
    scale = uv_per_count
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
