"""Which trigger exposed each recorded frame, proven by the optical sync code.

Arrival times alone (rig.core.frame_clock) are a guess that a busy host gets
wrong by whole frames without noticing. Here the LED's state in each frame is
read (``analysis.sync_code.classify_led``) and aligned with the state the
board's own LED_FLASHED events predict for each trigger's exposure
(``led_states_from_flashes``); frames the code cannot place are "not
determined" and keep their arrival-time stamp, marked as unproven. The record
of how it went goes into the recording's metadata (``frame_alignment``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.sync_code import (
    align_frames_to_triggers,
    band_from_times,
    classify_led,
    led_states_from_flashes,
)

# An exposure's edges are known to within this (the timing calibration's
# uncertainty and the trigger's jitter): an LED edge closer than this to an
# exposure makes that trigger's expected state "uncertain", not a wrong bit.
EDGE_MARGIN_S = 0.5e-3
BAND_SLACK_S = 2.0  # arrival times bound the search only; the code decides


@dataclass(frozen=True)
class FrameAlignment:
    """Per recorded frame: the trigger (index into the triggers given) or -1."""

    trigger_index: np.ndarray
    record: dict[str, Any]


def align_recorded_frames(
    frame_times_s: np.ndarray,
    led_brightness: np.ndarray,
    repeats: np.ndarray,
    triggers: list[tuple[int, int, float]],
    flashes: list[tuple[int, int, float]],
    *,
    fs_hz: float,
    delay_samples: int = 0,
    exposure_samples: int = 1,
) -> FrameAlignment:
    """Align recorded frames to ``triggers`` (sample, count, host time) by the
    LED code the ``flashes`` (onset, samples, host time) made."""
    n = len(frame_times_s)
    record: dict[str, Any]
    if n == 0 or not triggers or not flashes:
        why = "no frames" if n == 0 else "no triggers" if not triggers else "no LED"
        record = {
            "method": "led_code",
            "verdict": "not_determined",
            "notes": [why],
        }
        return FrameAlignment(np.full(n, -1, dtype=np.int64), record)
    trigger_samples = np.array([t[0] for t in triggers], dtype=np.int64)
    trigger_times = np.array([t[2] for t in triggers], dtype=np.float64)
    onsets = np.array([f[0] for f in flashes], dtype=np.int64)
    durations = np.array([f[1] for f in flashes], dtype=np.int64)
    expected = led_states_from_flashes(
        trigger_samples,
        exposure_samples,
        onsets,
        durations,
        delay_samples=delay_samples,
        margin_samples=EDGE_MARGIN_S * fs_hz,
    )
    reading = classify_led(np.asarray(led_brightness, dtype=np.float64))
    band = band_from_times(
        np.asarray(frame_times_s, dtype=np.float64), trigger_times, slack_s=BAND_SLACK_S
    )
    index, alignment = align_frames_to_triggers(
        reading.bits, expected, repeats=np.asarray(repeats, dtype=bool), band=band
    )
    record = alignment.to_dict()
    record["led_separation"] = reading.separation
    record["delay_samples"] = int(delay_samples)
    record["exposure_samples"] = int(exposure_samples)
    record["edge_margin_s"] = EDGE_MARGIN_S
    return FrameAlignment(np.asarray(index, dtype=np.int64), record)
