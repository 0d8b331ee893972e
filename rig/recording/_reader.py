"""Reading a recording back: memory-mapped samples, gaps, events, frames.

A recording that was cut short (crash, SIGKILL, full disk) opens too: a partial
last sample row, a partial last JSON or CSV line are ignored and listed in
``problems``; its ``status`` is ``crashed`` (metadata still says ``recording``
and no live writer holds the recording's lock); frames that ``frames.csv`` lists
but the video file does not hold (the encoder's last buffer) are dropped from
the frame times and the frame table.
"""

from __future__ import annotations

import csv
import functools
import gc
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rig.recording import _format as f
from rig.recording._files import is_locked_by_a_writer
from rig.recording._video import count_video_frames


class RecordingFormatError(ValueError):
    """The folder is not a recording this reader can read."""


MAX_CHANNELS = 1024  # of the format; a board streams at most 32
MAX_SAMPLE_NUMBER = 2**62  # unwrapped sample numbers are int64 and never near this


def _regular_file(path: Path, *, required: bool) -> bool:
    """True if ``path`` is a file to read; refuse a folder, pipe or device (a
    pipe nobody writes would block the reader forever), and a missing required
    file. False for a missing optional one."""
    if not path.exists():
        if required:
            raise RecordingFormatError(
                f"{path}: missing; every recording has it (docs/recording-format.md)"
            )
        return False
    if not path.is_file():
        raise RecordingFormatError(
            f"{path}: not a regular file (a folder, pipe or device)"
        )
    return True


def _objects(joined: bytes, n: int) -> list[dict[str, Any]] | None:
    """``[joined]`` parsed, if it is ``n`` JSON objects; else None."""
    collecting = gc.isenabled()
    # Thousands of new dicts, in no cycle: the collections their count sets
    # off find nothing, and one of them can be a pass over every object of
    # the process (~80 ms once the analysis has run in it).
    gc.disable()
    try:
        parsed = json.loads(b"[" + joined + b"]")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    finally:
        if collecting:
            gc.enable()
    if (
        isinstance(parsed, list)
        and len(parsed) == n
        and not set(map(type, parsed)) - {dict}
    ):
        return parsed
    return None


def _read_jsonl(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    _regular_file(path, required=True)
    data = path.read_bytes()
    # One parse for the file (~3× faster than a parse a line), its newlines
    # made commas: when that is one object a line, no line is blank (a blank
    # line makes it invalid JSON), so it is the array of the lines.
    text = data[:-1] if data.endswith(b"\n") else data
    at_once = _objects(text.replace(b"\n", b","), text.count(b"\n") + 1)
    if at_once is not None:
        return at_once
    lines = data.split(b"\n")
    whole = [line for line in lines if line.strip()]
    at_once = _objects(b",".join(whole), len(whole))  # blank lines left out
    if at_once is not None:
        return at_once
    # a torn or bad line: line by line, to name it
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            if number == len(lines):  # only the last line may be torn
                problems.append(f"{path.name}: ignored a partial last line")
                continue
            raise RecordingFormatError(
                f"{path}: line {number} is not valid JSON"
            ) from None
        if not isinstance(record, dict):
            raise RecordingFormatError(
                f"{path}: line {number} is {type(record).__name__}; allowed: a JSON "
                "object per line"
            )
        records.append(record)
    return records


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _finite(value: Any, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _read_metadata(meta_path: Path) -> dict[str, Any]:
    """metadata.json, parsed and its layout keys checked (file, key, allowed)."""
    _regular_file(meta_path, required=True)
    try:
        metadata = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 JSON"
        raise RecordingFormatError(
            f"{meta_path}: not valid JSON ({why}); allowed: the JSON object the "
            "recorder writes"
        ) from None
    if not isinstance(metadata, dict):
        raise RecordingFormatError(
            f"{meta_path}: a JSON {type(metadata).__name__}; allowed: a JSON object"
        )
    if metadata.get("format") != f.FORMAT_NAME:
        raise RecordingFormatError(f"{meta_path}: format is {metadata.get('format')!r}")
    version = metadata.get("schema_version")
    if type(version) is not int or version > f.SCHEMA_VERSION:
        raise RecordingFormatError(
            f"{meta_path}: schema_version {version!r} is newer than this reader "
            f"understands (up to {f.SCHEMA_VERSION}); update neurorig"
        )
    n_ch = metadata.get("n_channels")
    if not _whole(n_ch, 1, MAX_CHANNELS):
        raise RecordingFormatError(
            f"{meta_path}: n_channels = {n_ch!r}; allowed a whole number "
            f"1–{MAX_CHANNELS}"
        )
    rate = metadata.get("sample_rate_hz")
    if not _finite(rate, 1.0, 1e7):
        raise RecordingFormatError(
            f"{meta_path}: sample_rate_hz = {rate!r}; allowed a number 1–1e7 Hz"
        )
    acquisition = metadata.get("acquisition")
    if acquisition is not None:
        if not isinstance(acquisition, dict):
            raise RecordingFormatError(
                f"{meta_path}: acquisition = {acquisition!r:.60}; allowed a JSON object"
            )
        volts = acquisition.get("volts_per_count_nominal")
        if volts is not None and not _finite(volts, 1e-30, 1e3):
            raise RecordingFormatError(
                f"{meta_path}: acquisition.volts_per_count_nominal = {volts!r}; "
                "allowed a finite number > 0"
            )
    geometry = metadata.get("geometry")
    if geometry is not None:
        if not isinstance(geometry, dict):
            raise RecordingFormatError(
                f"{meta_path}: geometry = {geometry!r:.60}; allowed a JSON object"
            )
        centres = geometry.get("pair_centres_m")
        if centres is not None and not (
            isinstance(centres, list)
            and len(centres) == n_ch
            and all(_finite(c, -10.0, 10.0) for c in centres)
            and len(set(centres)) == n_ch
        ):
            raise RecordingFormatError(
                f"{meta_path}: geometry.pair_centres_m = {centres!r:.80}; allowed "
                f"n_channels = {n_ch} different positions in metres, one per channel"
            )
    return metadata


def _read_index(
    path: Path, n_rows: int, problems: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(runs, gaps) of index.jsonl, checked: runs start at row 0, rows and sample
    numbers increase; every sample number a whole number ≥ 0."""
    runs, gaps = [], []
    for k, record in enumerate(_read_jsonl(path, problems), start=1):
        kind = record.get("kind")
        first = record.get("first_sample")
        if kind == "run":
            row = record.get("row")
            if not _whole(row, 0, 2**62) or not _whole(first, 0, MAX_SAMPLE_NUMBER):
                raise RecordingFormatError(
                    f"{path}: record {k}: run row = {row!r}, first_sample = "
                    f"{first!r}; allowed whole numbers ≥ 0"
                )
            runs.append((row, first))
        elif kind == "gap":
            n_lost = record.get("n_lost")
            if not _whole(first, 0, MAX_SAMPLE_NUMBER) or not _whole(
                n_lost, 1, MAX_SAMPLE_NUMBER
            ):
                raise RecordingFormatError(
                    f"{path}: record {k}: gap first_sample = {first!r}, n_lost = "
                    f"{n_lost!r}; allowed whole numbers, n_lost ≥ 1"
                )
            gaps.append((first, n_lost))
        else:
            raise RecordingFormatError(
                f"{path}: record {k}: kind = {kind!r}; allowed 'run' or 'gap'"
            )
    runs_a = np.array(runs, dtype=np.int64).reshape(-1, 2)
    runs_a = runs_a[runs_a[:, 0] < n_rows]  # a run whose rows never arrived
    if n_rows and (not len(runs_a) or runs_a[0, 0] != 0):
        raise RecordingFormatError(
            f"{path}: no run starts at row 0; the sample numbers of "
            f"{f.SAMPLES}'s first rows are unknown"
        )
    for (row0, first0), (row1, first1) in itertools.pairwise(runs_a):
        # a run of no rows is followed by the next at the same row: that one wins
        if row1 < row0 or first1 < first0 + (row1 - row0):
            raise RecordingFormatError(
                f"{path}: run at row {row1} (first_sample {first1}) does not follow "
                f"the run at row {row0} (first_sample {first0}); allowed: rows and "
                "sample numbers that increase"
            )
    return runs_a, np.array(gaps, dtype=np.int64).reshape(-1, 2)


STIM_FIELDS = ("amplitude_vpp", "commanded_vpp", "requested_vpp")


def _check_stimuli(path: Path, events: list[dict[str, Any]]) -> None:
    """Each stim_delivered event has a sample number, and a duration and numbers
    where it has them; in order, no two at one sample (a board delivers one at
    a time)."""
    seen: set[tuple[int, int]] = set()
    last = 0
    kinds = map(dict.get, events, itertools.repeat("kind"))  # one C-level pass
    for k, kind in enumerate(kinds, start=1):
        if kind != "stim_delivered":
            continue
        e = events[k - 1]
        where = f"{path}: event {k} (stim_delivered)"
        sample: Any = e.get("sample")
        if not _whole(sample, 0, MAX_SAMPLE_NUMBER):
            raise RecordingFormatError(
                f"{where}: sample = {sample!r}; allowed a whole number ≥ 0"
            )
        duration = e.get("duration_s", 1.0)  # the analysis asks for it if missing
        if not _finite(duration, 1e-7, 10.0):
            raise RecordingFormatError(
                f"{where}: duration_s = {duration!r}; allowed a number > 0 s"
            )
        for key in STIM_FIELDS:
            value = e.get(key)
            if value is not None and not (
                isinstance(value, int | float) and not isinstance(value, bool)
            ):
                raise RecordingFormatError(
                    f"{where}: {key} = {value!r}; allowed a number (Vpp)"
                )
        # "pair": a version-2 recording's (protocol 2); "cathode"/"anode" since.
        for key in ("pair", "cathode", "polarity", "pulse_index"):
            value = e.get(key, 0)
            if not _whole(value, 0, 2**31):
                raise RecordingFormatError(
                    f"{where}: {key} = {value!r}; allowed a whole number ≥ 0"
                )
        anode = e.get("anode")
        if anode is not None and (
            not _whole(anode, 0, 2**31) or ("cathode" in e and anode == e["cathode"])
        ):
            raise RecordingFormatError(
                f"{where}: anode = {anode!r}; allowed a whole number ≥ 0 other than "
                "the cathode, or null (the common return)"
            )
        key_ = (sample, e.get("pulse_index", 0))
        if key_ in seen:
            raise RecordingFormatError(
                f"{where}: a second stim_delivered at sample {sample}; a board "
                "delivers one stimulus at a time"
            )
        if seen and sample < last:  # the analysis reads stimuli in order
            raise RecordingFormatError(
                f"{where}: sample {sample} comes after a stimulus at sample {last}; "
                "allowed: stimuli in the order they were delivered"
            )
        seen.add(key_)
        last = sample


def _have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _luma(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as grayscale uint8: its luma plane (FFV1 gray is
    stored as the luma alone; Motion JPEG's YUV holds it in the first plane)."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width].copy()


class VideoFrames:
    """Lazy access to the recording's video frames (grayscale uint8).

    Read with PyAV (the ``av`` wheel bundles FFmpeg) and, where it is missing,
    with OpenCV: the same frames in order; ``frames[k]`` is one container seek
    and one decode with PyAV (FFV1 and Motion JPEG are intra-only: every frame
    a key frame), a 16-frame-back seek and decodes forward with OpenCV."""

    def __init__(self, path: Path, n_frames: int) -> None:
        self.path = path
        self._n = n_frames
        self._pyav = _have_pyav()

    def __len__(self) -> int:
        return self._n

    def _check_file(self) -> None:
        if not self.path.is_file():
            raise RecordingFormatError(
                f"{self.path}: missing; the frames are read from it (renamed or "
                "moved? put it back)"
            )

    def _open(self) -> Any:
        """A capture of the video, or a RecordingFormatError naming it."""
        import cv2

        self._check_file()
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise RecordingFormatError(
                f"{self.path}: cannot be opened as a video (unreadable or damaged)"
            )
        return capture

    def _open_av(self) -> Any:
        """A PyAV container of the video, or a RecordingFormatError naming it."""
        import av

        self._check_file()
        try:
            container = av.open(str(self.path))
            if not container.streams.video:
                container.close()
                raise av.error.InvalidDataError(0, "no video stream")
        except (av.error.FFmpegError, OSError) as error:
            raise RecordingFormatError(
                f"{self.path}: cannot be opened as a video (unreadable or "
                f"damaged: {error})"
            ) from None
        return container

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._pyav:
            container = self._open_av()
            try:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame threads: intra-only codecs
                decoded = container.decode(stream)
                for frame in itertools.islice(decoded, self._n):
                    yield _luma(frame)
            finally:
                container.close()
            return
        capture = self._open()
        try:
            for _ in range(self._n):
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame[..., 0] if frame.ndim == 3 else frame
        finally:
            capture.release()

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index``. With PyAV: a seek to the frame's presentation
        timestamp (at most half a frame later, so the key frame found is frame
        ``index`` itself) and one decode, checked against that timestamp;
        frame 3000 of a minute at 60 fps took 20 s decoding from the start."""
        if not -self._n <= index < self._n:
            raise IndexError(f"frame {index} out of range (0–{self._n - 1})")
        index %= self._n
        if self._pyav:
            return self._seek_av(index)
        import cv2

        capture = self._open()
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok:
            raise IndexError(f"frame {index} could not be decoded from {self.path}")
        return frame[..., 0] if frame.ndim == 3 else frame

    def _seek_av(self, index: int) -> np.ndarray:
        container = self._open_av()
        try:
            stream = container.streams.video[0]
            rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
            start = stream.start_time or 0
            if not rate or not base:  # no timing: count frames from the start
                frames = container.decode(stream)
                frame = next(itertools.islice(frames, index, None), None)
                if frame is None:
                    raise IndexError(
                        f"frame {index} could not be decoded from {self.path}"
                    )
                return _luma(frame)
            ticks_per_frame = 1 / (rate * base)
            target = start + index * ticks_per_frame
            container.seek(
                int(target + ticks_per_frame / 2), stream=stream, backward=True
            )
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts >= target - ticks_per_frame / 2:
                    if (
                        frame.pts is not None
                        and frame.pts > target + ticks_per_frame / 2
                    ):
                        break  # the seek landed past it: count from the start
                    return _luma(frame)
        finally:
            container.close()
        for k, frame in enumerate(self):  # not reached for FFV1 or Motion JPEG
            if k == index:
                return frame
        raise IndexError(f"frame {index} could not be decoded from {self.path}")

    def read_all(self) -> np.ndarray:
        """Every frame as one ``(n, height, width)`` array."""
        frames = list(self)
        return np.stack(frames) if frames else np.zeros((0, 0, 0), np.uint8)


@dataclass(frozen=True)
class SavedTracking:
    """The live tracking saved while recording (``tracking.jsonl``), one row
    per tracked frame in frame order (frames the tracking skipped or lost
    under load have no row)."""

    frame_index: np.ndarray  # (n,) int64: frame k in the video
    sample: np.ndarray  # (n,) int64: the live estimate of its sample (-1: none)
    positions_mm: np.ndarray  # (n, n_bands): along the body from the head, NaN lost
    region_displacement_mm: np.ndarray  # (n, n_regions)
    body_displacement_mm: np.ndarray  # (n,)
    info: dict[str, Any] | None  # metadata.tracking: how the frames were tracked
    n_frames: int  # frames the video holds


def _numbers(value: Any) -> list[float] | None:
    """A JSON list of numbers and nulls as floats (NaN for null); None if not."""
    if not isinstance(value, list):
        return None
    out = []
    for v in value:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            return None
    return out


_NUMBER_TYPES = frozenset({int, float, type(None)})


def _float_rows(rows: list[Any]) -> np.ndarray | None:
    """Equal-length JSON lists of numbers and nulls as one float array (NaN
    for null), or None (another shape or type: the line-by-line path says which
    line)."""
    if set(map(type, rows)) - {list}:
        return None
    widths = set(map(len, rows))
    if len(widths) > 1:
        return None
    if set(map(type, itertools.chain.from_iterable(rows))) - _NUMBER_TYPES:
        return None  # bool, str, list, dict
    return np.array(rows, dtype=float).reshape(len(rows), widths.pop() if rows else 0)


def _read_tracking_at_once(
    path: Path, n_frames: int, info: Any
) -> SavedTracking | None:
    """tracking.jsonl straight into arrays by a Numba parser when every line
    is as the writer writes it (``_tracking_kernel``: a minute at 60 fps in a
    few milliseconds), else parsed as one JSON array and checked column-wise
    (a few tens of milliseconds, against ~0.5 s record by record). None when
    anything is off (a torn last line, a wrong value, rows of different
    widths): the line-by-line reader then reads it or names the line."""
    data = path.read_bytes()
    from rig.recording._tracking_kernel import read_tracking_bytes  # numba: lazily

    parsed = read_tracking_bytes(data)
    if parsed is not None:  # every line as the writer writes it
        return _saved_tracking(*parsed, n_frames=n_frames, info=info)
    lines = [line for line in data.split(b"\n") if line.strip()]
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if len(records) != len(lines) or set(map(type, records)) - {dict}:
        return None
    index = [r.get("frame_index") for r in records]
    sample = [r.get("sample") for r in records]
    body = [r.get("body_displacement_mm") for r in records]
    if set(map(type, index)) - {int} or set(map(type, sample)) - {int, type(None)}:
        return None
    if set(map(type, body)) - _NUMBER_TYPES:
        return None
    positions = _float_rows([r.get("positions_mm") for r in records])
    regions = _float_rows([r.get("region_displacement_mm") for r in records])
    if positions is None or regions is None:
        return None
    index_a = np.array(index, dtype=object)
    sample_a = np.array([-1 if v is None else v for v in sample], dtype=object)
    if records and (
        index_a.min() < 0
        or index_a.max() > MAX_SAMPLE_NUMBER
        or sample_a.max() > MAX_SAMPLE_NUMBER
        or min((v for v in sample if v is not None), default=0) < 0
    ):
        return None
    return _saved_tracking(
        index_a.astype(np.int64),
        sample_a.astype(np.int64),
        positions,
        regions,
        np.array(body, dtype=float),
        n_frames=n_frames,
        info=info,
    )


def _saved_tracking(
    frames: np.ndarray,
    sample: np.ndarray,
    positions: np.ndarray,
    regions: np.ndarray,
    body: np.ndarray,
    *,
    n_frames: int,
    info: Any,
) -> SavedTracking | None:
    """The lines' columns (frame numbers and samples ≥ 0 and whole, checked)
    as ``SavedTracking``; None when a body displacement is out of range."""
    known = body[~np.isnan(body)]
    if not (np.isfinite(known).all() and (np.abs(known) <= 1e6).all()):
        return None
    # The last line of a frame wins; frames the video does not hold are left out.
    unique, last_reversed = np.unique(frames[::-1], return_index=True)
    pick = (len(frames) - 1 - last_reversed)[unique < n_frames]
    if pick.size == 0:  # as the line-by-line reader: no rows, no columns
        positions, regions = positions[:, :0], regions[:, :0]
    rows: np.ndarray | slice = pick
    if pick.size and (np.diff(pick) == 1).all():  # lines in a run: no copy
        rows = slice(pick[0], pick[-1] + 1)  # (a minute's positions: 4 MB, 3 ms)
    return SavedTracking(
        frame_index=frames[rows],
        sample=sample[rows],
        positions_mm=positions[rows],
        region_displacement_mm=regions[rows],
        body_displacement_mm=body[rows],
        info=info if isinstance(info, dict) else None,
        n_frames=n_frames,
    )


def _read_tracking(
    path: Path, n_frames: int, info: Any, problems: list[str]
) -> SavedTracking | None:
    """tracking.jsonl: the last line of a frame wins; frames the video does not
    hold are left out (a kill: the encoder's last buffer)."""
    if not _regular_file(path, required=False):
        return None
    fast = _read_tracking_at_once(path, n_frames, info)
    if fast is not None:
        return fast
    return _read_tracking_by_line(path, n_frames, info, problems)


def _read_tracking_by_line(
    path: Path, n_frames: int, info: Any, problems: list[str]
) -> SavedTracking:
    """Line by line: reads a torn last line, rows of different widths, and
    names a bad line by its number."""
    rows: dict[int, tuple[int, list[float], list[float], float]] = {}
    for k, record in enumerate(_read_jsonl(path, problems), start=1):
        index, sample = record.get("frame_index"), record.get("sample")
        positions = _numbers(record.get("positions_mm"))
        regions = _numbers(record.get("region_displacement_mm"))
        body = record.get("body_displacement_mm")
        if (
            not _whole(index, 0, MAX_SAMPLE_NUMBER)
            or not (sample is None or _whole(sample, 0, MAX_SAMPLE_NUMBER))
            or positions is None
            or regions is None
            or not (body is None or _finite(body, -1e6, 1e6))
        ):
            raise RecordingFormatError(
                f"{path}: line {k} is {json.dumps(record)[:80]}; allowed "
                "frame_index (whole number ≥ 0), sample (whole number ≥ 0 or "
                "null), positions_mm and region_displacement_mm (lists of numbers "
                "or nulls), body_displacement_mm (a number or null)"
            )
        if int(index) < n_frames:  # type: ignore[arg-type]  # checked whole
            rows[int(index)] = (  # type: ignore[arg-type]
                -1 if sample is None else sample,
                positions,
                regions,
                math.nan if body is None else float(body),
            )
    order = sorted(rows)
    width = max((len(rows[i][1]) for i in order), default=0)
    n_regions = max((len(rows[i][2]) for i in order), default=0)
    positions_a = np.full((len(order), width), np.nan)
    regions_a = np.full((len(order), n_regions), np.nan)
    for j, i in enumerate(order):
        positions_a[j, : len(rows[i][1])] = rows[i][1]
        regions_a[j, : len(rows[i][2])] = rows[i][2]
    return SavedTracking(
        frame_index=np.array(order, dtype=np.int64),
        sample=np.array([rows[i][0] for i in order], dtype=np.int64),
        positions_mm=positions_a,
        region_displacement_mm=regions_a,
        body_displacement_mm=np.array([rows[i][3] for i in order], dtype=float),
        info=info if isinstance(info, dict) else None,
        n_frames=n_frames,
    )


@dataclass
class Recording:
    """An opened recording folder."""

    path: Path
    metadata: dict[str, Any]
    samples: np.ndarray  # memmap int16 (n_rows, n_channels)
    runs: np.ndarray  # (k, 2) int64: row, first sample number of each run
    gaps: np.ndarray  # (g, 2) int64: first sample number, n lost
    events: list[dict[str, Any]]
    frame_times: np.ndarray  # host time of each frame, s
    frame_samples: np.ndarray | None  # device sample number of each frame (-1: none)
    problems: list[str] = field(default_factory=list)
    writer_alive: bool = False  # a live writer is still recording into it
    # The camera's own number of each frame (-1: none), None if not recorded
    camera_frame_numbers: np.ndarray | None = None
    # How each frame's sample was found (frame_samples.csv's ``source``; "" for
    # a frame without a row), None without a frame table
    frame_sources: list[str] | None = None

    @property
    def status(self) -> str:
        """How the recording ended (docs/recording-format.md): ``completed``,
        ``cancelled``, ``emergency_stop``, ``fault:<NAME>``, ``unplugged``,
        ``disk_full``, ``recording`` (a live writer is still at it) or
        ``crashed`` (it never closed: its process died)."""
        status = str(self.metadata.get("status", "unknown"))
        if status == "recording" and not self.writer_alive:
            return "crashed"
        return status

    @property
    def crashed(self) -> bool:
        """The process recording it died before closing it (SIGKILL, crash, power)."""
        return self.status == "crashed"

    @property
    def sample_rate_hz(self) -> float:
        """Samples per second per channel."""
        return float(self.metadata["sample_rate_hz"])

    @property
    def n_channels(self) -> int:
        """Channels per sample row."""
        return int(self.metadata["n_channels"])

    def sample_numbers(self) -> np.ndarray:
        """Device sample number of every row (int64)."""
        out = np.empty(self.samples.shape[0], dtype=np.int64)
        bounds = [*self.runs[:, 0].tolist(), self.samples.shape[0]]
        for (row, first), stop in zip(self.runs, bounds[1:], strict=True):
            out[row:stop] = first + np.arange(stop - row)
        return out

    def rows_for(self, first_sample: int, n: int) -> slice:
        """Rows holding samples ``[first_sample, first_sample + n)``; KeyError if
        any of them were lost or are outside the recording."""
        numbers = self.sample_numbers()
        row = int(np.searchsorted(numbers, first_sample))
        if (
            row + n > len(numbers)
            or numbers[row] != first_sample
            or (numbers[row + n - 1] != first_sample + n - 1)
        ):
            raise KeyError(
                f"samples {first_sample}–{first_sample + n} are not all here"
            )
        return slice(row, row + n)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """Events of one kind, in order."""
        return [e for e in self.events if e.get("kind") == kind]

    @property
    def frames(self) -> VideoFrames:
        """The video frames, decoded lazily."""
        return VideoFrames(self.path / f.VIDEO, len(self.frame_times))

    @functools.cached_property
    def tracking(self) -> SavedTracking | None:
        """The live tracking saved with the frames (``tracking.jsonl``), read
        on first use; None when the recording has none. Its problems (a torn
        last line) are added to ``problems``."""
        return _read_tracking(
            self.path / f.TRACKING,
            len(self.frame_times),
            self.metadata.get("tracking"),
            self.problems,
        )

    @property
    def attachments(self) -> dict[str, Path]:
        """Attached files (protocol, calibrations) by name."""
        folder = self.path / f.ATTACHMENTS
        return {p.name: p for p in sorted(folder.iterdir())} if folder.exists() else {}


def open_recording(path: str | Path) -> Recording:
    """Open the recording in folder ``path``."""
    path = Path(path)
    meta_path = path / f.METADATA
    if not meta_path.exists():
        raise RecordingFormatError(
            f"{path} is not a neurorig recording: no {f.METADATA}"
        )
    metadata = _read_metadata(meta_path)
    problems: list[str] = []
    n_ch = int(metadata["n_channels"])
    samples_path = path / f.SAMPLES
    _regular_file(samples_path, required=True)
    size = samples_path.stat().st_size
    row_bytes = 2 * n_ch
    n_rows = size // row_bytes
    if size % row_bytes:
        problems.append(
            f"{f.SAMPLES}: ignored a partial last row ({size % row_bytes} bytes)"
        )
    samples: np.ndarray
    if n_rows:
        samples = np.memmap(
            samples_path, dtype=f.SAMPLE_DTYPE, mode="r", shape=(n_rows, n_ch)
        )
    else:
        samples = np.zeros((0, n_ch), dtype=np.int16)
    runs, gaps = _read_index(path / f.INDEX, n_rows, problems)
    events = _read_jsonl(path / f.EVENTS, problems)
    _check_stimuli(path / f.EVENTS, events)
    open_status = metadata.get("status") == "recording"
    writer_alive = open_status and is_locked_by_a_writer(path / f.LOCK)
    frame_times, frame_numbers = _read_frame_times(path / f.FRAMES, problems)
    if len(frame_times):
        video = path / f.VIDEO
        closed_count = metadata.get("n_frames")
        if (
            metadata.get("status") not in ("recording", "disk_full", "fault:recording")
            and _whole(closed_count, 0, 2**40)
            and (path / f.TRACKING).exists()
        ):
            # Closed by the writer, which counted what it encoded and finished
            # the file (not stopped by a write error): the video need not be
            # opened (analysis from the saved tracking never does).
            in_video = int(closed_count)  # type: ignore[arg-type]  # checked whole
        else:
            in_video = (
                _video_frame_count(video, finished=not open_status)
                if _regular_file(video, required=False)
                else 0
            )
        if in_video < len(frame_times):
            problems.append(
                f"{f.FRAMES} lists {len(frame_times)} frames, {f.VIDEO} holds "
                f"{in_video}: the last {len(frame_times) - in_video} were dropped"
            )
            frame_times = frame_times[:in_video]
            if frame_numbers is not None:
                frame_numbers = frame_numbers[:in_video]
    table = _read_frame_samples(path / f.FRAME_SAMPLES, len(frame_times), problems)
    frame_samples, frame_sources = table if table is not None else (None, None)
    if open_status and not writer_alive:
        problems.append(
            "the recording was not closed (crash or kill): status crashed; data "
            "up to the last flush is here"
        )
    elif open_status:
        problems.append(
            "the recording is not closed yet (a live writer holds it): data up "
            "to the last flush is here"
        )
    return Recording(
        path,
        metadata,
        samples,
        runs,
        gaps,
        events,
        frame_times,
        frame_samples,
        problems,
        writer_alive,
        frame_numbers,
        frame_sources,
    )


def _video_frame_count(path: Path, *, finished: bool) -> int:
    """Frames ``path`` holds: from its header when the writer finished it, else
    (or if the header has no count) by reading its packets."""
    if finished:
        import cv2

        capture = cv2.VideoCapture(str(path))
        try:
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        finally:
            capture.release()
        if np.isfinite(count) and 0 < count < 2**31:
            return round(float(count))
    return count_video_frames(path)


FRAMES_COLUMNS = ("frame_index", "host_time_s")  # required, in this order
FRAME_NUMBER_COLUMN = "camera_frame_number"  # optional third column


def _read_frame_times(
    path: Path, problems: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Host arrival times of the frames, and the camera's own frame numbers
    (-1 where none; None if the file has no such column)."""
    if not _regular_file(path, required=False):
        return np.zeros(0), None
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise RecordingFormatError(f"{path}: not UTF-8 text") from None
    header = tuple(lines[0].strip().split(","))
    if header[:2] != FRAMES_COLUMNS or header[2:] not in ((), (FRAME_NUMBER_COLUMN,)):
        raise RecordingFormatError(
            f"{path}: header {lines[0][:80]!r}; allowed "
            f"'{','.join(FRAMES_COLUMNS)}' or "
            f"'{','.join(FRAMES_COLUMNS)},{FRAME_NUMBER_COLUMN}'"
        )
    has_numbers = len(header) == 3
    rows = lines[1:]
    if rows and rows[-1] != "":  # a kill mid-line leaves no newline
        problems.append(f"{path.name}: ignored a partial last line")
    rows = rows[:-1] if rows else rows
    at_once = _frame_times_at_once(rows, len(header))
    if at_once is not None:
        return at_once[0], at_once[1] if has_numbers else None
    times = np.empty(len(rows))
    numbers = np.full(len(rows), -1, dtype=np.int64)
    for i, line in enumerate(rows):
        parts = line.split(",")
        try:
            if len(parts) != len(header) or int(parts[0]) != i:
                raise ValueError
            times[i] = float(parts[1])
            if not math.isfinite(times[i]):
                raise ValueError
            if has_numbers and parts[2]:
                numbers[i] = int(parts[2])
                if not 0 <= numbers[i] < MAX_SAMPLE_NUMBER:
                    raise ValueError
        except (ValueError, OverflowError):
            raise RecordingFormatError(
                f"{path}: line {i + 2} is {line[:60]!r}; allowed "
                f"{i},<host time, s>"
                + (",<whole number ≥ 0 or empty>" if has_numbers else "")
            ) from None
    return times, numbers if has_numbers else None


def _columns(rows: list[str], width: int) -> list[list[str]] | None:
    """The comma-separated fields of ``rows`` as ``width`` columns; None unless
    every row has ``width`` fields."""
    if set(map(str.count, rows, itertools.repeat(","))) - {width - 1}:
        return None
    if not rows:
        return [[] for _ in range(width)]
    fields = ",".join(rows).split(",")
    return [fields[k::width] for k in range(width)]


def _whole_numbers(column: list[str]) -> np.ndarray:
    """``int`` of each field (-1 for an empty one) as int64; ValueError or
    OverflowError as ``int`` and int64 raise them."""
    return np.array([int(v) if v else -1 for v in column], dtype=np.int64)


def _frame_times_at_once(
    rows: list[str], width: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """frames.csv's rows column by column (``int`` and ``float`` of each field,
    as the row-by-row loop; ~5× faster), or None when any row is not as the
    writer writes it: the loop then names it."""
    columns = _columns(rows, width)
    if columns is None:
        return None
    n = len(rows)
    try:
        index = np.fromiter(map(int, columns[0]), np.int64, n)
        times = np.fromiter(map(float, columns[1]), np.float64, n)
        numbers = _whole_numbers(columns[2]) if width == 3 else np.full(n, -1)
    except (ValueError, OverflowError):
        return None
    if not ((index == np.arange(n)).all() and np.isfinite(times).all()):
        return None
    if width == 3:  # a number ≥ 0 where given ("-1" is not one)
        given = np.fromiter(map(bool, columns[2]), bool, n)
        if not ((0 <= numbers) & (numbers < MAX_SAMPLE_NUMBER) | ~given).all():
            return None
    return times, numbers


FRAME_TABLE_COLUMNS = ("frame_index", "sample", "source", "trigger_count")


def _read_frame_samples(
    path: Path, n_frames: int, problems: list[str]
) -> tuple[np.ndarray, list[str]] | None:
    """The frame table: each frame's sample (-1: none) and source ("" where no
    row); the last row of a frame wins (rows are appended as they are
    established, and may be corrected later)."""
    if not _regular_file(path, required=False):
        return None
    out = np.full(n_frames, -1, dtype=np.int64)
    sources = [""] * n_frames
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordingFormatError(f"{path}: not UTF-8 text") from None
    lines = text.split("\n")
    if lines[0] and set(FRAME_TABLE_COLUMNS) - set(lines[0].strip().split(",")):
        raise RecordingFormatError(
            f"{path}: header {lines[0][:80]!r}; allowed "
            f"'{','.join(FRAME_TABLE_COLUMNS)}'"
        )
    torn = bool(lines) and lines[-1] != ""  # a kill mid-line leaves no newline
    if torn and lines[-1].strip():
        problems.append(f"{path.name}: ignored a partial last line")
    if _frame_table_at_once(text, lines, out, sources):
        return out, sources
    rows = list(csv.DictReader(lines[:-1] if torn else lines))
    for number, row in enumerate(rows, start=2):
        try:
            index = int(row["frame_index"])
            sample = int(row["sample"]) if row["sample"] else -1
            source = str(row["source"])
        except (KeyError, TypeError, ValueError):
            raise RecordingFormatError(f"{path}: bad line {number}") from None
        if not 0 <= sample < MAX_SAMPLE_NUMBER and sample != -1:
            raise RecordingFormatError(
                f"{path}: line {number}: sample {sample}; allowed a whole number ≥ 0"
            )
        if 0 <= index < n_frames:
            out[index] = sample
            sources[index] = source
    return out, sources


def _frame_table_at_once(
    text: str, lines: list[str], out: np.ndarray, sources: list[str]
) -> bool:
    """The frame table as the writer writes it (its header; no quotes, so no
    field the csv module would read otherwise) column by column into ``out``
    and ``sources``, the last row of a frame winning (~10× faster than
    ``csv.DictReader``); False, ``out`` and ``sources`` untouched, when any row
    is not: the csv reader then reads it or names the line."""
    rows = lines[1:-1]  # without the header and the partial or empty last line
    if (
        lines[0] != ",".join(FRAME_TABLE_COLUMNS)
        or '"' in text  # quoted fields
        or "\r" in text  # a line end inside a row, to the csv module
        or "\0" in text  # the csv module refuses it
        or max(map(len, rows), default=0) > csv.field_size_limit()
    ):
        return False
    columns = _columns(rows, len(FRAME_TABLE_COLUMNS))
    if columns is None:
        return False
    try:
        index = np.fromiter(map(int, columns[0]), np.int64, len(rows))
        sample = _whole_numbers(columns[1])
    except (ValueError, OverflowError):
        return False
    if not ((0 <= sample) & (sample < MAX_SAMPLE_NUMBER) | (sample == -1)).all():
        return False
    # The last row of each frame the video holds.
    unique, last_reversed = np.unique(index[::-1], return_index=True)
    kept = (unique >= 0) & (unique < len(out))
    frames, pick = unique[kept], (len(index) - 1 - last_reversed)[kept]
    out[frames] = sample[pick]
    for frame, row in zip(frames.tolist(), pick.tolist(), strict=True):
        sources[frame] = columns[2][row]
    return True
