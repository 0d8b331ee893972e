"""Reading Backyard Brains Spike Recorder files: NAME.wav + NAME-events.txt.

The WAV is 16-bit PCM, one channel per electrode pair. The events file has one
marker per line, ``MARKER_ID,<tab>TIME_S``, and ``#`` comment lines.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
    """Read the WAV and its events file."""
    wav_path = Path(wav_path)
    try:
        with wave.open(str(wav_path), "rb") as w:
            if w.getsampwidth() != 2:
                raise SpikeRecorderError(
                    f"{wav_path}: {8 * w.getsampwidth()}-bit samples; Spike Recorder "
                    "WAVs are 16-bit PCM"
                )
            n_ch, rate, n = w.getnchannels(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise SpikeRecorderError(
            f"{wav_path}: not a readable PCM WAV file ({exc})"
        ) from None
    except FileNotFoundError:
        raise SpikeRecorderError(f"{wav_path}: no such file") from None
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, n_ch).copy()
    events = events_path_for(wav_path)
    if not events.exists():
        raise SpikeRecorderError(
            f"{events}: missing; Spike Recorder writes the markers there "
            "(lines 'MARKER_ID,<tab>TIME_S')"
        )
    ids, times = [], []
    for number, line in enumerate(events.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split(",")]
        try:
            ids.append(parts[0])
            times.append(float(parts[1]))
        except (IndexError, ValueError):
            raise SpikeRecorderError(
                f"{events}: line {number} {line!r} is not 'MARKER_ID,<tab>TIME_S'"
            ) from None
    return SpikeRecorderData(samples, float(rate), ids, np.array(times))


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
