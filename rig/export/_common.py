"""What every exporter shares: the error it raises, the recording's clock and
metadata read once, the optional packages asked for by name."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig.recording import Recording, RecordingFormatError
from rig.recording import open as open_recording


class ExportError(ValueError):
    """An export that cannot be made: one line naming the file or option and why."""


def need(module: str, extra: str) -> Any:
    """Import an optional package, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"this export needs {module}, which is not installed: pip install "
            f"'neurorig[{extra}]'"
        ) from None


@dataclass(frozen=True)
class Runs:
    """The recording's contiguous runs of samples: rows [start, stop) of
    ``samples`` hold sample numbers ``first`` onwards."""

    starts: np.ndarray  # row of each run's first sample
    stops: np.ndarray  # row after each run's last sample
    firsts: np.ndarray  # sample number of each run's first row


def runs_of(rec: Recording) -> Runs:
    """Non-empty runs (a run with no rows, followed by one at the same row,
    is dropped: the later one wins, as in ``Recording.sample_numbers``)."""
    rows = rec.runs[:, 0]
    stops = np.append(rows[1:], rec.samples.shape[0])
    keep = stops > rows
    return Runs(rows[keep], stops[keep], rec.runs[keep, 1])


def open_for_export(path: str | Path) -> Recording:
    """The recording at ``path``, refused in one line if it has no samples or
    cannot be read."""
    try:
        rec = open_recording(path)
    except (RecordingFormatError, OSError) as exc:
        raise ExportError(str(exc)) from None
    if rec.samples.shape[0] == 0:
        raise ExportError(f"{path}: the recording holds no samples; nothing to export")
    return rec


def start_time(rec: Recording) -> dt.datetime:
    """When the recording started (its ``created_utc``), timezone-aware."""
    text = rec.metadata.get("created_utc")
    try:
        when = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ExportError(
            f"{rec.path}: metadata.json created_utc = {text!r}; allowed an ISO "
            "date and time with its time zone (the recorder writes one)"
        )
    return when


@dataclass(frozen=True)
class Scale:
    """Counts to volts at the electrodes: ``counts × channel_conversion ×
    conversion + offset_v`` (NWB's form; SpikeInterface reads it so)."""

    conversion: float  # nominal V per count
    channel_conversion: np.ndarray | None  # the gain calibration over nominal
    offset_v: np.ndarray | None  # −offset_counts × its V per count, per channel


def scale_of(rec: Recording) -> Scale:
    """The recording's scale: the gain calibration's (``uv_per_count``,
    ``offset_counts``) where there is one, else the board's nominal."""
    acquisition = rec.metadata.get("acquisition") or {}
    nominal = acquisition.get("volts_per_count_nominal")
    if nominal is None:
        raise ExportError(
            f"{rec.path}: metadata.json has no acquisition.volts_per_count_nominal; "
            "the samples cannot be put in volts"
        )
    calibrations = rec.metadata.get("calibrations") or {}
    gain = calibrations.get("gain") if isinstance(calibrations, dict) else None
    if not isinstance(gain, dict) or gain.get("uv_per_count") is None:
        return Scale(float(nominal), None, None)
    per_channel = _per_channel(rec, gain, "uv_per_count")
    offsets = gain.get("offset_counts")
    offset_v = None
    if offsets is not None:
        offset_v = -_per_channel(rec, gain, "offset_counts") * per_channel * 1e-6
    return Scale(float(nominal), per_channel * 1e-6 / float(nominal), offset_v)


def _per_channel(rec: Recording, gain: dict, key: str) -> np.ndarray:
    values = gain.get(key)
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        out = np.zeros(0)
    if out.shape != (rec.n_channels,) or not np.all(np.isfinite(out)):
        raise ExportError(
            f"{rec.path}: metadata.json calibrations.gain.{key} = {values!r:.80}; "
            f"allowed {rec.n_channels} finite numbers, one per channel"
        )
    return out


def protocol_text(rec: Recording) -> tuple[str | None, str | None]:
    """(file name, text) of the attached protocol file, or (None, None)."""
    name = rec.metadata.get("protocol_file")
    path = rec.attachments.get(name) if isinstance(name, str) else None
    if path is None:
        return None, None
    try:
        return name, path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read the attached protocol: {exc}") from None
