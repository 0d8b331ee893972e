"""Align a cut-short recording's frames by the LED code, offline.

A recording aligns its frames when it closes (rig.core.recorder). One whose
process was killed never closed: its frame table holds only the rows appended
while recording, stamped by arrival time, which a busy host gets wrong by whole
frames, and its metadata no ``frame_alignment``. Everything the LED code needs
is on disk though: the video (the LED in each frame, and which frames repeat
the one before), the board's ``camera_trigger`` and ``led`` events, the
camera's frame numbers (``frames.csv``), and where the LED is and the
exposure delay (metadata ``optical_sync``, written when the recording
started). This aligns them as the recorder would have (docs/optical-sync.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.sync_code import (
    EDGE_MARGIN_S,
    MAX_CELLS,
    align_frames_to_triggers,
    classify_led,
    fill_lost_triggers,
    led_brightness,
    led_states_from_flashes,
)

BAND_TRIGGERS = 240  # ±4 s at 60 fps around the arrival-time guess, if needed


def realign_frames(rec: Any) -> tuple[np.ndarray, list[str], dict[str, Any]] | None:
    """Each frame's sample and source, and the alignment record, for a
    recording that has the evidence but was never aligned (or whose own
    alignment placed nothing); None otherwise (already aligned, no LED code in
    view, no frames, triggers or flashes)."""
    meta = rec.metadata
    sync = meta.get("optical_sync")
    done = meta.get("frame_alignment")
    if not isinstance(sync, dict) or (
        isinstance(done, dict) and done.get("verdict") != "not_determined"
    ):
        return None
    region = _in_stored_frames(_region(sync.get("led_region_px")), meta)
    delay = sync.get("delay_samples", 0)
    if region is None or type(delay) is not int:
        return None
    triggers = rec.events_of("camera_trigger")
    flashes = rec.events_of("led")
    n = len(rec.frame_times)
    if n == 0 or not triggers or not flashes:
        return None
    fs = rec.sample_rate_hz
    trigger_samples, _, lost = fill_lost_triggers(
        np.array([int(e["sample"]) for e in triggers], dtype=np.int64),
        np.array([int(e.get("trigger_count", -1)) for e in triggers], dtype=np.int64),
    )
    onsets = np.array([int(e["sample"]) for e in flashes], dtype=np.int64)
    durations = np.array(
        [round(float(e.get("duration_s", 0.0)) * fs) for e in flashes], np.int64
    )
    brightness, repeats = _led_in_frames(rec.frames, region)
    n = brightness.size  # frames the video really holds
    expected = led_states_from_flashes(
        trigger_samples, 1, onsets, durations,
        delay_samples=delay, margin_samples=EDGE_MARGIN_S * fs,
    )  # fmt: skip
    numbers = _frame_numbers(rec.camera_frame_numbers, n)
    band = None
    if n * trigger_samples.size > MAX_CELLS:
        band = _band_from_table(rec.frame_samples, trigger_samples, n)
    index, record = align_frames_to_triggers(
        classify_led(brightness).bits,
        expected,
        repeats=repeats,
        band=band,
        frame_numbers=numbers,
    )
    samples = np.where(index >= 0, trigger_samples[np.maximum(index, 0)] + delay, -1)
    sources = ["led_code" if i >= 0 else "not_determined" for i in index.tolist()]
    out = record.to_dict()
    out.update(
        delay_samples=delay,
        n_trigger_events_lost=int(lost.sum()),
        realigned_offline=True,
    )
    return samples.astype(np.int64), sources, out


def _region(value: Any) -> tuple[int, int, int, int] | None:
    if (
        isinstance(value, list)
        and len(value) == 4
        and all(type(v) is int and v >= 0 for v in value)
        and value[0] < value[1]
        and value[2] < value[3]
    ):
        return value[0], value[1], value[2], value[3]
    return None


def _in_stored_frames(
    region: tuple[int, int, int, int] | None, meta: dict
) -> tuple[int, int, int, int] | None:
    """The LED region (camera image px) in the stored frames: a cropped video
    (``video.crop_px``) starts at the crop's (top, left); None when the crop
    left the LED out (then the video cannot align itself)."""
    video = meta.get("video")
    crop = _region(video.get("crop_px")) if isinstance(video, dict) else None
    if region is None or crop is None:
        return region
    top, bottom, left, right = crop
    if not (top <= region[0] and region[1] <= bottom and left <= region[2]
            and region[3] <= right):  # fmt: skip
        return None
    return region[0] - top, region[1] - top, region[2] - left, region[3] - left


def _led_in_frames(frames: Any, region: tuple[int, int, int, int]):
    """LED brightness in each frame, and whether it repeats the one before."""
    brightness, repeats = [], []
    previous = None
    for frame in frames:
        brightness.append(float(led_brightness(frame[None], region)[0]))
        repeats.append(previous is not None and np.array_equal(previous, frame))
        previous = frame
    return np.array(brightness), np.array(repeats, dtype=bool)


def _frame_numbers(numbers: np.ndarray | None, n: int) -> np.ndarray | None:
    if numbers is None or len(numbers) < n:
        return None
    numbers = np.asarray(numbers[:n], dtype=np.int64)
    if np.any(numbers < 0) or np.any(np.diff(numbers) < 0):
        return None
    return numbers


def _band_from_table(
    table: np.ndarray | None, trigger_samples: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Search ±BAND_TRIGGERS around the arrival-time rows appended while
    recording (frames without one: in line with their neighbours)."""
    guess = np.full(n, np.nan)
    if table is not None:
        stamped = np.asarray(table[:n], dtype=np.int64)
        known = stamped >= 0
        guess[known] = np.searchsorted(trigger_samples, stamped[known])
    idx = np.arange(n)
    known = np.isfinite(guess)
    if known.any():
        # Frames without a row (the last second before the kill): a frame a
        # trigger, from the nearest row.
        guess = np.interp(idx, idx[known], guess[known] - idx[known]) + idx
    else:
        guess = idx.astype(float)
    lo = np.floor(guess).astype(np.int64) - BAND_TRIGGERS
    return lo, lo + 2 * BAND_TRIGGERS + 1
