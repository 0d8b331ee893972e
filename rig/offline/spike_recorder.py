"""Reading Backyard Brains Spike Recorder files: NAME.wav + NAME-events.txt.

The WAV is 16-bit PCM, one channel per electrode pair. The events file has one
marker per line, ``MARKER_ID,<tab>TIME_S``, and ``#`` comment lines. Spike
Recorder writes more than stimuli there: keyboard markers (digits), spike-sorter
events (``_neuron0`` …) and others. ``select_stimuli`` keeps the stimulus
markers (chosen IDs, or by default the keyboard markers, i.e. IDs that are
whole numbers) and counts the rest; a marker map (TOML) gives each marker ID
its stimulus parameters.
"""

from __future__ import annotations

import math
import struct
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.stimulus import (
    format_configuration,
    legacy_pair_configuration,
    parse_configuration,
)


class SpikeRecorderError(ValueError):
    """A Spike Recorder file that cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class SpikeRecorderData:
    """Samples (int16, (n, channels)), sample rate and marker events."""

    samples: np.ndarray
    sample_rate_hz: float
    marker_ids: list[str]
    marker_times_s: np.ndarray


def events_path_for(wav: Path) -> Path:
    """``NAME.wav`` → ``NAME-events.txt``."""
    return wav.with_name(wav.stem + "-events.txt")


def read_spike_recorder(wav_path: str | Path) -> SpikeRecorderData:
    """Read the WAV and its events file.

    Refused, with the file named: a file that is not a regular file (a pipe
    nobody writes would never end), a WAV that is not 16-bit PCM or holds no
    samples or has no sample rate, an events file that is not UTF-8 text, a
    line that is not ``MARKER_ID,<tab>TIME_S``, a time that is not a number
    ≥ 0, and an events file with no marker at all.
    """
    wav_path = Path(wav_path)
    _regular_file(wav_path, "no such file")
    try:
        with wave.open(str(wav_path), "rb") as w:
            if w.getsampwidth() != 2:
                raise SpikeRecorderError(
                    f"{wav_path}: {8 * w.getsampwidth()}-bit samples; Spike Recorder "
                    "WAVs are 16-bit PCM"
                )
            n_ch, rate, n = w.getnchannels(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, struct.error) as exc:
        raise SpikeRecorderError(
            f"{wav_path}: not a readable PCM WAV file ({exc})"
        ) from None
    if n_ch < 1 or rate < 1:
        raise SpikeRecorderError(
            f"{wav_path}: {n_ch} channels at {rate} Hz in its header; allowed ≥ 1 "
            "channel at a sample rate > 0"
        )
    whole = len(raw) // (2 * n_ch) * 2 * n_ch  # a file cut mid-frame: whole frames
    samples = np.frombuffer(raw[:whole], dtype="<i2").reshape(-1, n_ch).copy()
    if not len(samples):
        raise SpikeRecorderError(f"{wav_path}: holds no samples")
    events = events_path_for(wav_path)
    _regular_file(
        events,
        "missing; Spike Recorder writes the markers there "
        "(lines 'MARKER_ID,<tab>TIME_S')",
    )
    try:
        lines = events.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpikeRecorderError(
            f"{events}: not UTF-8 text; allowed lines 'MARKER_ID,<tab>TIME_S'"
        ) from None
    ids, times = [], []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # A marker ID may hold commas ("arbitrary strings"): the time is last.
        marker, comma, time_text = text.rpartition(",")
        try:
            time_s = float(time_text) if comma else math.nan
        except ValueError:
            time_s = math.nan
        if not marker.strip() or not math.isfinite(time_s):
            raise SpikeRecorderError(
                f"{events}: line {number} {line[:80]!r} is not 'MARKER_ID,<tab>TIME_S'"
            )
        if time_s < 0:  # (one beyond the end is the analysis's to report)
            raise SpikeRecorderError(
                f"{events}: line {number}: time {time_s:g} s; allowed ≥ 0 s"
            )
        ids.append(marker.strip())
        times.append(time_s)
    if not ids:
        raise SpikeRecorderError(
            f"{events}: no markers; allowed lines 'MARKER_ID,<tab>TIME_S'"
        )
    return SpikeRecorderData(samples, float(rate), ids, np.array(times))


def _regular_file(path: Path, missing: str) -> None:
    if not path.exists():
        raise SpikeRecorderError(f"{path}: {missing}")
    if not path.is_file():
        raise SpikeRecorderError(
            f"{path}: not a regular file (a folder, pipe or device)"
        )


def write_spike_recorder(
    wav_path: str | Path,
    samples: np.ndarray,
    sample_rate_hz: int,
    markers: list[tuple[str, float]],
) -> None:
    """Write a WAV + events pair in Spike Recorder's format (for tests and exports)."""
    wav_path = Path(wav_path)
    data = np.ascontiguousarray(samples, dtype="<i2")
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate_hz))
        w.writeframes(data.tobytes())
    lines = ["# Marker IDs can be arbitrary strings.", "# Marker ID,\tTime (in s)"]
    lines += [f"{marker},\t{time_s:.4f}" for marker, time_s in markers]
    events_path_for(wav_path).write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class MarkerParameters:
    """What a marker ID stands for (SI units; NaN/None where not given)."""

    amplitude_vpp: float = math.nan
    duration_s: float | None = None
    configuration: str = "C0-A1"  # the electrodes: "C3-A4", "C3-R"


@dataclass(frozen=True, slots=True)
class StimulusMarkers:
    """The stimulus markers of an events file, and what was left out."""

    ids: list[str]
    times_s: np.ndarray
    ignored: dict[str, int]  # other marker IDs -> how many lines


def select_stimuli(
    data: SpikeRecorderData, marker_ids: list[str] | None = None
) -> StimulusMarkers:
    """The markers that are stimuli: ``marker_ids``, or every whole-number ID."""
    ids, times, ignored = [], [], {}
    for marker, t in zip(data.marker_ids, data.marker_times_s, strict=True):
        if marker_ids is not None:
            wanted = marker in marker_ids
        else:  # keyboard markers: ASCII whole numbers ('²' is a digit, not a number)
            wanted = marker.strip().isascii() and marker.strip().isdecimal()
        if wanted:
            ids.append(marker)
            times.append(float(t))
        else:
            ignored[marker] = ignored.get(marker, 0) + 1
    return StimulusMarkers(ids, np.array(times), ignored)


_MAP_KEYS = {"amplitude_vpp", "duration_ms", "configuration", "pair"}


def read_marker_map(path: str | Path) -> dict[str, MarkerParameters]:
    """A marker map: one TOML table per marker ID.

    Every key is optional; unknown keys and non-finite or negative values are
    refused with the file, the marker and the key named.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "markers.toml")
    ...     _ = path.write_text('''
    ... [markers."1"]
    ... amplitude_vpp = 4.0
    ... duration_ms = 3.0
    ... configuration = "C0-A1"
    ... ''')
    ...     markers = read_marker_map(path)
    >>> markers["1"]  # SI units
    MarkerParameters(amplitude_vpp=4.0, duration_s=0.003, configuration='C0-A1')

    ``pair = k`` (before electrode configurations) means ``"C<2k>-A<2k+1>"``.
    """
    path = Path(path)
    _regular_file(path, "no such marker map")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpikeRecorderError(f"{path}: no such marker map") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SpikeRecorderError(f"{path}: not a TOML marker map ({exc})") from None
    markers = doc.get("markers")
    if not isinstance(markers, dict) or not markers:
        raise SpikeRecorderError(
            f'{path}: needs [markers."ID"] tables, e.g. [markers."1"] duration_ms = 3'
        )
    out = {}
    for marker, table in markers.items():
        where = f'{path}: [markers."{marker}"]'
        if not isinstance(table, dict):
            raise SpikeRecorderError(f"{where} must be a table")
        unknown = set(table) - _MAP_KEYS
        if unknown:
            raise SpikeRecorderError(
                f"{where}: unknown key {sorted(unknown)[0]!r}; allowed "
                + ", ".join(sorted(_MAP_KEYS))
            )
        values = {}
        for key in ("amplitude_vpp", "duration_ms"):
            if key in table:
                v = table[key]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise SpikeRecorderError(f"{where} {key} must be a number")
                try:
                    v = float(v)  # TOML integers have no size limit
                except OverflowError:
                    v = math.inf
                if not math.isfinite(v) or v <= 0:
                    raise SpikeRecorderError(f"{where} {key} = {v}: must be > 0")
                values[key] = float(v)
        pair = table.get("pair", 0)
        if isinstance(pair, bool) or not isinstance(pair, int) or not 0 <= pair <= 7:
            raise SpikeRecorderError(
                f"{where} pair = {pair!r}: a whole number 0–7 (or, better, "
                'configuration = "C0-A1")'
            )
        configuration = legacy_pair_configuration(pair)
        if "configuration" in table:
            if "pair" in table:
                raise SpikeRecorderError(
                    f"{where}: give configuration or pair (old), not both"
                )
            text = table["configuration"]
            try:
                configuration = format_configuration(*parse_configuration(text))
            except ValueError as exc:
                raise SpikeRecorderError(f"{where} {exc}") from None
        out[str(marker)] = MarkerParameters(
            amplitude_vpp=values.get("amplitude_vpp", math.nan),
            duration_s=values["duration_ms"] / 1e3 if "duration_ms" in values else None,
            configuration=configuration,
        )
    return out
