"""Loaders for the offline pipeline: a neurorig recording folder or a Backyard
Brains Spike Recorder WAV, each turned into a ``Source`` (what the pipeline
needs: sample rate, positions, stimuli, a reader of µV epochs, video)."""

from __future__ import annotations

import itertools
import math
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.artifact import MARKER_ONSET_SEARCH_S, ONSET_SEARCH_S
from analysis.pipeline import Stimulus
from analysis.propagation import PRE_MIN_S, search_window_s
from calibration import CameraCalibration, GainCalibration
from calibration._files import rules_of
from rig.offline.realign import realign_frames
from rig.recording.configuration import stim_configuration
from rig.rig_file import positions_from_option

OPTION = "--electrode-positions-mm"


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
    # How each frame's sample was found (frame_samples.csv's source), and the
    # recording's alignment record (metadata.frame_alignment; None: not stated)
    frame_sources: list[str] | None = None
    frame_alignment: dict | None = None
    head_on_raceway_m: float = 0.0
    px_per_mm: float | None = None
    origin_px: float = 0.0
    lens: dict | None = None  # camera calibration: camera_matrix, dist_coeffs
    # The live tracking saved with the recording (rig.recording.SavedTracking),
    # used instead of decoding the video unless asked to re-track; a Future
    # while it is being read (``load_recording`` reads it beside the analysis
    # of the stimuli): ask ``saved()``
    saved_tracking: Any = None
    # The stored video's crop of the camera image (top, bottom, left, right),
    # None: the whole image; re-tracking shifts the origin and lens by it
    video_crop_px: tuple[int, int, int, int] | None = None
    clip_uv: Any = None  # the ADC's rail in µV (per channel or one): clipped there
    mains_hz: float | None = None  # None: 50 or 60 Hz, whichever fits
    onset_search_s: float = ONSET_SEARCH_S  # markers: MARKER_ONSET_SEARCH_S
    # where positions_m came from, for messages about them
    positions_from: str = OPTION
    # the recording's metadata.json (None for a WAV or a neo file): the
    # report's header (date, subject, protocol, calibrations, software)
    metadata: dict | None = None
    # the closed-loop search's decisions (events of kind "optimiser"), in order
    optimiser: list[dict] | None = None
    # its outcome (the event "optimiser_result": recommendation, Pareto front)
    optimiser_result: dict | None = None
    # the stimulation electrodes along the body, m from the head (the metadata's
    # geometry.stim_electrodes_m; None: not stated): each configuration's site
    # is its cathode's position
    stim_electrodes_m: np.ndarray | None = None

    def saved(self) -> Any:
        """The saved tracking (None: none), once read."""
        tracking = self.saved_tracking
        return tracking.result() if isinstance(tracking, Future) else tracking


INT16_RAIL = 32767  # the largest count of a 16-bit sample


class _SampleRows:
    """The rows' sample numbers, from the runs alone: ``Recording.sample_numbers()``
    without building it (an array of every row: a minute at 30 kHz is 1.8
    million numbers, ~10 ms to make). The reader has checked that the runs'
    rows and sample numbers increase, so the numbers increase strictly and a
    run's rows hold consecutive numbers."""

    def __init__(self, runs: np.ndarray, n_rows: int) -> None:
        stops = np.append(runs[1:, 0], n_rows)
        kept = stops > runs[:, 0]  # a run of no rows: the next one at its row wins
        self.rows = runs[kept, 0]
        self.firsts = runs[kept, 1]
        self.lasts = self.firsts + (stops[kept] - self.rows) - 1
        self.n_rows = n_rows

    def first_at_or_after(self, sample: int) -> int:
        """The first row whose number is ≥ ``sample`` (n_rows if none):
        ``np.searchsorted(numbers, sample)``."""
        j = int(np.searchsorted(self.lasts, sample))
        if j == self.lasts.size:
            return self.n_rows
        return int(self.rows[j] + max(0, sample - int(self.firsts[j])))

    def number(self, row: int) -> int:
        """The sample number of ``row`` (0 ≤ row < n_rows): ``numbers[row]``."""
        j = int(np.searchsorted(self.rows, row, side="right")) - 1
        return int(self.firsts[j] + (row - self.rows[j]))


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
    meta_path = path / "metadata.json"
    if electrode_positions_mm:
        positions = np.array(
            positions_from_option(electrode_positions_mm, rec.n_channels)
        )
        positions_from = OPTION
    elif geometry.get("pair_centres_m") is not None:
        # checked by the reader: finite, different, one per channel
        positions = np.asarray(geometry["pair_centres_m"], dtype=float)
        positions_from = f"{meta_path}: geometry.pair_centres_m"
    else:
        raise ValueError(
            f"{path}: the recording's metadata has no electrode geometry; give "
            "--electrode-positions-mm A,B,C,D (pair centres along the body, mm)"
        )
    for problem in rec.problems:  # what the reader tolerated, said
        print(f"warning: {path}: {problem}", file=sys.stderr)
    filmed = len(rec.frame_times) > 0
    tracking = _read_beside(lambda: rec.tracking) if filmed else None
    uv_per_count = _uv_per_count(meta, meta_path, rec.n_channels)
    rows = _SampleRows(rec.runs, rec.samples.shape[0])

    def here(first: int, n: int) -> bool:
        """Samples ``first … first + n − 1`` are all in the recording."""
        row = rows.first_at_or_after(first)
        return not (
            first < 0
            or row + n > rows.n_rows
            or rows.number(row) != first
            or rows.number(row + n - 1) != first + n - 1
        )

    def read_uv(first: int, n: int):
        if not here(first, n):
            return None  # part of the epoch was lost
        row = rows.first_at_or_after(first)
        return np.asarray(rec.samples[row : row + n], dtype=np.float64) * uv_per_count

    events_path = path / "events.jsonl"
    optimiser: list[dict] = []
    optimiser_result = None
    stimuli = []
    kinds = map(dict.get, rec.events, itertools.repeat("kind"))  # one C-level pass
    for k, kind in enumerate(kinds, start=1):
        if kind == "optimiser":
            optimiser.append(rec.events[k - 1])
        if kind == "optimiser_result":
            optimiser_result = rec.events[k - 1]
        if kind != "stim_delivered":
            continue
        e = rec.events[k - 1]
        if "duration_s" not in e:  # the reader leaves the asking to the analysis
            raise ValueError(
                f"{events_path}: event {k} (stim_delivered at sample {e['sample']}) "
                "has no duration_s; allowed a number > 0 s (the pulse's length)"
            )
        # Map on the requested levels (the protocol's grid); keep what was delivered.
        stimuli.append(
            Stimulus(
                e["sample"],
                e.get("requested_vpp", e.get("commanded_vpp", e.get("amplitude_vpp"))),
                e["duration_s"],
                stim_configuration(e),
                e.get("polarity", 0),
                e.get("amplitude_vpp", math.nan),
                e.get("pulse_index", 0),
            )
        )
    if rows.n_rows:
        recorded = f"samples {rows.number(0)}–{rows.number(rows.n_rows - 1)}"
        if rec.gaps.size:
            recorded += f", with {len(rec.gaps)} gap(s) of lost samples"
    else:
        recorded = "no samples: samples.i16 is empty"
    _say_unanalysable(
        stimuli, here, rec.sample_rate_hz, positions, events_path, recorded
    )
    camera = geometry.get("camera") or {}
    if not isinstance(camera, dict):
        raise ValueError(
            f"{meta_path}: geometry.camera = {camera!r:.60}; allowed a JSON object"
        )
    origin = camera.get("origin_px") or [0.0]
    if not isinstance(origin, list) or not _number_in(origin[0], -1e5, 1e5):
        raise ValueError(
            f"{meta_path}: geometry.camera.origin_px = {origin!r:.60}; allowed "
            "[x] or [x, y], pixels within ±1e5"
        )
    head = geometry.get("head_on_raceway_m", 0.0)
    if not _number_in(head, 0.0, 1.0):
        raise ValueError(
            f"{meta_path}: geometry.head_on_raceway_m = {head!r:.60}; allowed "
            "0–1 m (as the rig file's head_on_raceway_mm)"
        )
    frame_samples, frame_sources = rec.frame_samples, rec.frame_sources
    alignment = _alignment_record(meta)
    realigned = realign_frames(rec)  # a cut-short recording: align it now
    if realigned is not None:
        frame_samples, frame_sources, alignment = realigned
    has_video = len(rec.frame_times) > 0 and frame_samples is not None
    video = meta.get("video") if isinstance(meta.get("video"), dict) else {}
    crop = video.get("crop_px")
    if crop is not None and not (
        isinstance(crop, list)
        and len(crop) == 4
        and all(_number_in(v, 0, 1e5) for v in crop)
    ):
        raise ValueError(
            f"{meta_path}: video.crop_px = {crop!r:.60}; allowed [top, bottom, "
            "left, right], whole pixels of the camera image, or null"
        )
    return Source(
        name=str(path),
        fs_hz=rec.sample_rate_hz,
        n_channels=rec.n_channels,
        positions_m=positions,
        stimuli=stimuli,
        read_uv=read_uv,
        first_sample=rows.number(0) if rows.n_rows else 0,
        frames=rec.frames if has_video else None,
        frame_samples=frame_samples if has_video else None,
        frame_sources=frame_sources if has_video else None,
        frame_alignment=alignment,
        head_on_raceway_m=float(head),
        px_per_mm=_px_per_mm(px_per_mm, meta, camera, meta_path),
        origin_px=float(origin[0]),
        lens=None if px_per_mm else _lens(meta, meta_path),
        clip_uv=INT16_RAIL * np.abs(uv_per_count),
        positions_from=positions_from,
        metadata=meta,
        optimiser=optimiser,
        optimiser_result=optimiser_result,
        stim_electrodes_m=_stim_electrodes(geometry, meta_path),
        saved_tracking=tracking if has_video else None,
        video_crop_px=None if crop is None else (crop[0], crop[1], crop[2], crop[3]),
    )


def _read_beside(read: Callable[[], Any]) -> Future:
    """``read()`` on a thread of its own. The saved tracking's parse is a Numba
    kernel that lets go of the GIL: on a second core it is done while the
    stimuli are analysed (~10 ms of a 1-minute recording's ~0.1 s). Its
    errors are raised where it is used."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(read())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="read-saved-tracking", daemon=True).start()
    return future


def _stim_electrodes(geometry: dict, meta_path: Path) -> np.ndarray | None:
    """``geometry.stim_electrodes_m`` (m from the head), checked, or None."""
    values = geometry.get("stim_electrodes_m")
    if values is None:
        return None
    if not (
        isinstance(values, list)
        and values
        and all(_number_in(v, 0.0, 1.0) for v in values)
    ):
        raise ValueError(
            f"{meta_path}: geometry.stim_electrodes_m = {values!r:.60}; allowed "
            "a list of positions 0–1 m from the head, one per stimulation electrode"
        )
    return np.asarray(values, dtype=float)


def _say_unanalysable(
    stimuli: list[Stimulus],
    here: Any,
    fs_hz: float,
    positions_m: np.ndarray,
    where: Path,
    recorded: str,
) -> None:
    """Warn, naming the events file, of each stimulus whose epoch is not all in
    the recording (the analysis gives it no result): never a silent drop.

    The shortest epoch the analysis reads (``analysis.pipeline``): from
    ``PRE_MIN_S`` before the onset to the last possible arrival at the
    farthest pair.
    """
    pre = round(PRE_MIN_S * fs_hz)
    n = pre + round(search_window_s(positions_m) * fs_hz)
    missing = [s.onset_sample for s in stimuli if not here(s.onset_sample - pre, n)]
    if not missing:
        return
    shown = ", ".join(str(m) for m in missing[:5]) + (", …" if len(missing) > 5 else "")
    print(
        f"warning: {where}: {len(missing)} of {len(stimuli)} stimuli not analysed: "
        f"the samples of their responses are outside the recording ({recorded}) "
        f"or were lost; stimuli at sample {shown}",
        file=sys.stderr,
    )


def _alignment_record(meta: dict) -> dict | None:
    """metadata.frame_alignment if it is a JSON object (else: not stated)."""
    record = meta.get("frame_alignment")
    return record if isinstance(record, dict) else None


def _calibration(meta: dict, kind: str) -> dict | None:
    calibrations = meta.get("calibrations") or {}
    found = calibrations.get(kind) if isinstance(calibrations, dict) else None
    return found if isinstance(found, dict) else None


def _calibrated(meta: dict, meta_path: Path, cls: type, key: str) -> Any:
    """``calibrations.<kind>.<key>`` of the metadata, checked by the rule a
    calibration file's value keeps (``calibration``); None if absent."""
    found = _calibration(meta, cls.KIND)
    if found is None or found.get(key) is None:
        return None
    value = found[key]
    rule = rules_of(cls)[key]
    if not rule.ok(value):
        raise ValueError(
            f"{meta_path}: calibrations.{cls.KIND}.{key} = {value!r:.60}: allowed "
            f"{rule.allowed}"
        )
    return value


def _lens(meta: dict, meta_path: Path) -> dict | None:
    """The camera calibration's lens model (checked), or None."""
    matrix = _calibrated(meta, meta_path, CameraCalibration, "camera_matrix")
    coefficients = _calibrated(meta, meta_path, CameraCalibration, "dist_coeffs")
    if matrix is None or coefficients is None:
        return None
    return {"camera_matrix": matrix, "dist_coeffs": coefficients}


def _px_per_mm(
    given: float | None, meta: dict, camera: dict, meta_path: Path
) -> float | None:
    """--px-per-mm, else the recording's camera calibration, else nominal optics."""
    if given:
        return float(given)
    calibrated = _calibrated(meta, meta_path, CameraCalibration, "px_per_mm")
    if calibrated is not None:
        return float(calibrated)
    nominal = camera.get("px_per_mm")
    if nominal is None:
        return None
    if not _number_in(nominal, 0.01, 1000):  # the rig file's range
        print(
            f"warning: {meta_path}: geometry.camera.px_per_mm = {nominal!r:.60} is "
            "not a scale (allowed 0.01–1000 px/mm): displacement not measured; "
            "give --px-per-mm",
            file=sys.stderr,
        )
        return None
    print(
        "calibration warning: no camera calibration in the recording; "
        f"displacement uses the nominal {nominal} px/mm",
        file=sys.stderr,
    )
    return float(nominal)


def _number_in(value: Any, low: float, high: float) -> bool:
    """A JSON number (not a boolean), finite, in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return low <= value <= high  # False for NaN; an integer of any size compares


def _uv_per_count(meta: dict, meta_path: Path, n_channels: int) -> Any:
    """µV per count: the gain calibration's (one per channel), else nominal."""
    gain = _calibrated(meta, meta_path, GainCalibration, "uv_per_count")
    if gain is not None:
        if len(gain) != n_channels:
            raise ValueError(
                f"{meta_path}: calibrations.gain.uv_per_count has {len(gain)} "
                f"values for {n_channels} channels; allowed one per channel"
            )
        return np.asarray(gain, dtype=np.float64)
    # checked by the reader: finite, > 0
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
        events_path_for,
        read_marker_map,
        read_spike_recorder,
        select_stimuli,
    )

    if not (isinstance(uv_per_count, int | float) and 0 < uv_per_count < math.inf):
        raise ValueError(
            f"--uv-per-count {uv_per_count}: allowed a finite number > 0 "
            "(µV per WAV sample unit)"
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
    events = events_path_for(path)
    if markers.ignored:
        ignored = ", ".join(f"{k!r} ×{n}" for k, n in sorted(markers.ignored.items()))
        print(
            f"note: {sum(markers.ignored.values())} marker lines are not stimuli and "
            f"were ignored ({ignored}); choose with --stimulus-markers ID[,ID]",
            file=sys.stderr,
        )
    if not markers.ids:
        raise ValueError(
            f"{events}: no stimulus markers"
            + (f" with IDs {','.join(wanted)}" if wanted else " (whole-number IDs)")
            + f" for {path}; choose them with --stimulus-markers ID[,ID]"
        )
    fs = data.sample_rate_hz
    duration_s = data.samples.shape[0] / fs
    beyond = [
        (m, t) for m, t in zip(markers.ids, markers.times_s, strict=True)
        if t * fs >= data.samples.shape[0]
    ]  # fmt: skip
    if beyond:  # the events file of another recording, or a longer one cut short
        marker, t = beyond[0]
        raise ValueError(
            f"{events}: {len(beyond)} stimulus marker(s) after the end of "
            f"{path.name}, the first {marker!r} at {t:g} s; allowed times "
            f"0–{duration_s:g} s (is it this WAV's events file?)"
        )
    mapping = read_marker_map(marker_map) if marker_map else {}
    given_ms = pulse_duration_ms
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
                params.configuration if params else "C0-A1",
            )
        )
    scale = uv_per_count
    x = data.samples

    def here(first: int, n: int) -> bool:
        return 0 <= first and first + n <= x.shape[0]

    def read_uv(first: int, n: int):
        if not here(first, n):
            return None
        return x[first : first + n].astype(np.float64) * scale

    _say_unanalysable(
        stimuli, here, fs, positions, events, f"0–{duration_s:g} s of {path.name}"
    )
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
