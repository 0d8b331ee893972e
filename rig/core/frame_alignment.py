"""Which trigger exposed each recorded frame, proven by the optical sync code.

Arrival times alone (rig.core.frame_clock) are a guess that a busy host gets
wrong by whole frames without noticing. Here the LED's state in each frame is
read (``analysis.sync_code.classify_led``) and aligned with the state the
board's own LED_FLASHED events predict for each trigger's exposure
(``led_states_from_flashes``); frames the code cannot place are "not
determined" and keep their arrival-time stamp, marked as unproven. The record
of how it went goes into the recording's metadata (``frame_alignment``).

Where the camera numbers its own frames (V4L2 buffer sequence numbers, the
simulated camera's ``Xsequence``), the numbers go in too: the code proves the
constant between frame number and trigger, then checks every frame's number
against it, and disagreements are counted in the record
(``frame_number_disagreements``) and those frames left unproven. Numbers that
are missing for some frames or go backwards (the camera restarted) are not
used, and the record's ``notes`` say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from analysis.sync_code import (
    EDGE_MARGIN_S,
    align_frames_to_triggers,
    band_from_times,
    classify_led,
    fill_lost_triggers,
    led_states_from_flashes,
)

BAND_SLACK_S = 2.0  # arrival times bound the search only; the code decides


@dataclass(frozen=True)
class FrameAlignment:
    """Per recorded frame: the trigger (an index into ``trigger_samples`` and
    ``trigger_counts``: the triggers given, with any whose event was lost
    filled in) or -1."""

    trigger_index: np.ndarray
    record: dict[str, Any]
    trigger_samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    trigger_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


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
    frame_numbers: Sequence[int | None] | None = None,
) -> FrameAlignment:
    """Align recorded frames to ``triggers`` (sample, count, host time) by the
    LED code the ``flashes`` (onset, samples, host time) made, cross-checked
    with the camera's ``frame_numbers`` where it gave them."""
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
    given_counts = np.array([t[1] for t in triggers], dtype=np.int64)
    trigger_samples, trigger_counts, lost = fill_lost_triggers(
        np.array([t[0] for t in triggers], dtype=np.int64), given_counts
    )
    trigger_times = np.array([t[2] for t in triggers], dtype=np.float64)
    if lost.any():  # arrival times of the lost ones: in line with the rest
        trigger_times = np.interp(trigger_counts, given_counts, trigger_times)
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
    numbers, note = usable_frame_numbers(frame_numbers, n)
    index, alignment = align_frames_to_triggers(
        reading.bits,
        expected,
        repeats=np.asarray(repeats, dtype=bool),
        band=band,
        frame_numbers=numbers,
    )
    record = alignment.to_dict()
    if note:
        record["notes"] = [*record["notes"], note]
    record["led_separation"] = reading.separation
    record["delay_samples"] = int(delay_samples)
    record["exposure_samples"] = int(exposure_samples)
    record["edge_margin_s"] = EDGE_MARGIN_S
    record["n_trigger_events_lost"] = int(lost.sum())
    return FrameAlignment(
        np.asarray(index, dtype=np.int64), record, trigger_samples, trigger_counts
    )


def usable_frame_numbers(
    numbers: Sequence[int | None] | None, n_frames: int
) -> tuple[np.ndarray | None, str | None]:
    """The camera's frame numbers as an array if every frame has one and they
    never go back; else None and why (the code alone then aligns)."""
    if numbers is None or n_frames == 0 or all(x is None for x in numbers):
        return None, None
    if len(numbers) != n_frames or any(x is None for x in numbers):
        return None, (
            "the camera numbered only some frames: its frame numbers are not used"
        )
    array = np.asarray(numbers, dtype=np.int64)
    if np.any(np.diff(array) < 0):
        back = int(np.flatnonzero(np.diff(array) < 0)[0]) + 1
        return None, (
            f"the camera's frame numbers go back at frame {back} (it restarted?): "
            "not used"
        )
    return array, None


def drops_from_frame_table(
    counts: Sequence[int | None], first_count: int
) -> tuple[list[int], int] | None:
    """Triggers that exposed no recorded frame, as the frame table proves them.

    ``counts``: the trigger count of each video frame in order, None where
    the frame is not proven (the table's ``led_code`` rows have one);
    ``first_count``: the first trigger of the recording. Returns the drops the
    table names, and how many more it cannot name: between two consecutive
    proven frames every trigger in between is a drop; before the first proven
    frame (when it is the video's first) likewise; where unproven frames lie
    between, only how many triggers went without a frame is known. Triggers
    after the last proven frame are left out (frames still in flight at the
    stop). None when no frame is proven (the arrival-time guess is all there
    is).

    >>> drops_from_frame_table([3, 4, 6, None, 9, 10], first_count=2)
    ([2, 5], 1)
    """
    proven = [(k, c) for k, c in enumerate(counts) if c is not None]
    if not proven:
        return None
    named: list[int] = []
    not_named = 0
    for (k1, c1), (k2, c2) in pairwise([(-1, first_count - 1), *proven]):
        if c2 <= c1:  # a repeated frame (or the code's own contradiction)
            continue
        missing = (c2 - c1 - 1) - (k2 - k1 - 1)  # triggers less frames between
        if k2 == k1 + 1:
            named.extend(range(c1 + 1, c2))
        elif missing > 0:
            not_named += missing
    return named, not_named
