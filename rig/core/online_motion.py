"""Per-stimulus motion during acquisition: the twitch each stimulus evoked.

The electrical response of a stimulus is complete within a few tens of ms
(``rig.core.online_analysis``); its twitch peaks about 0.25 s after the stimulus
(docs/simulated-rig.md), so motion is measured separately, once the live tracking has
tracked a frame ``window_s`` after the onset. The measure is the offline one
(``analysis.displacement.stimulus_motion``: peak deviation from the trend of the
``baseline_s`` before the stimulus, so an overlapping earlier twitch is not
counted; the window ends at the next stimulus if that comes first), on the live
tracking's displacement history (the offline displacement rule, frame by
frame: ``analysis.displacement.OnlineDisplacement``), and is published as
``events.motion_measured(trial, result)`` with the same trial numbers and
stimulus fields as ``response_measured``. Regions are the electrode pairs'
centres ± 10 mm along the body (``regions_mm_from_head``, in each result);
``region_peak_strain`` is each region's strain measured the same way (its
largest deviation from its trend: length change / rest length).

Frame times here are the live tracking's (the newest camera trigger when the
frame arrived), good to about a frame; the offline analysis uses the recording's
exact frame table. So the offline rule that a window with a hole over 0.1 s
between tracked frames is not measured (``MAX_TRACKING_HOLE_S``) is not applied
here: arrival times bunch when the camera thread is held up (gaps of 0.15 s
between frames all tracked, in the GUI with the simulator in its process),
and a gap in them is no proof of a hole. A live measure across a real one reads
low (5.6 % across 0.3 s); the analysis of the recording says "not determined".
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from analysis.displacement import (
    ONLINE_TWITCH_WINDOW_S,
    TWITCH_BASELINE_S,
    MotionResponse,
    stimulus_motion,
)
from firmware_bridge.protocol import Decoded, StimDelivered
from rig.core.live_tracking import LiveTracking
from rig.core.online_analysis import RESULTS_KEPT, commanded_vpp, stimulus_key

BASELINE_S = TWITCH_BASELINE_S  # the offline analysis's
MAX_PENDING = 64  # stimuli waiting for frames (tracking lost: oldest dropped)


class OnlineMotion:
    """Turns stimulus events and tracked frames into per-stimulus motion results."""

    def __init__(
        self,
        tracking: LiveTracking,
        *,
        fs_hz: float,
        emit,
        requested_vpp=None,
        window_s: float = ONLINE_TWITCH_WINDOW_S,
        baseline_s: float = BASELINE_S,
    ) -> None:
        self.tracking = tracking
        self.fs_hz = fs_hz
        self.emit = emit
        self.requested_vpp = requested_vpp or commanded_vpp
        self.window_s = window_s
        self.baseline_s = baseline_s
        # The newest results, for scripts (bounded: a rig runs all day).
        self.results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        self.dropped = 0  # stimuli never measured (no frames came)
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._n_stimuli = 0
        self._previous_onset_s = -math.inf  # the last stimulus measured
        tracking.listeners.append(self.on_tracked)

    def consume(self, decoded: Decoded, host_time: float) -> None:
        """Relay-thread consumer: register each delivered stimulus."""
        for message in decoded.messages:
            if isinstance(message, StimDelivered):
                key = stimulus_key(message, self._n_stimuli, self.requested_vpp)
                self._n_stimuli += 1
                with self._lock:
                    self._pending.append(key)
                    if len(self._pending) > MAX_PENDING:
                        self._pending.pop(0)
                        self.dropped += 1

    def on_tracked(self, newest_time_s: float) -> None:
        """Tracking thread: measure every stimulus whose window is now filmed."""
        if not math.isfinite(newest_time_s):
            return
        # Stimuli arrive in onset order: the due ones are a prefix of the list.
        last_onset = (newest_time_s - self.window_s) * self.fs_hz
        with self._lock:
            n_due = 0
            while (
                n_due < len(self._pending)
                and self._pending[n_due]["stimulus_sample"] <= last_onset
            ):
                n_due += 1
            due, self._pending = self._pending[:n_due], self._pending[n_due:]
            following = self._pending[:1]
        if not due:
            return
        times, regions, whole, strain = self.tracking.series()
        for i, key in enumerate(due):
            # As offline, a twitch's window ends at the next stimulus.
            later = due[i + 1 : i + 2] or following
            onset_s = np.array(
                [s["stimulus_sample"] / self.fs_hz for s in [key, *later]]
            )
            # As offline, a pulse right after another is not measured alone.
            previous = self._previous_onset_s
            self._previous_onset_s = float(onset_s[0])
            per_region = [self._measure(regions[:, k], times, onset_s, previous)
                          for k in range(regions.shape[1])]  # fmt: skip
            body = self._measure(whole, times, onset_s, previous)
            result = {
                **key,
                "peak_displacement_mm": _num(body.peak_displacement_mm),
                "contraction_onset_latency_s": _num(body.onset_latency_s),
                "time_to_peak_s": _num(body.time_to_peak_s),
                "region_peak_displacement_mm": [
                    _num(m.peak_displacement_mm) for m in per_region
                ],
                "region_peak_strain": [
                    _num(
                        self._measure(
                            column, times, onset_s, previous
                        ).peak_displacement_mm
                    )
                    for column in strain.T
                ],
                "regions_mm_from_head": [
                    [lo, hi] for lo, hi in self.tracking.regions_mm
                ],
                "window_received_s": time.monotonic(),
            }
            self.results.append(result)
            self.emit(result["trial"], result)

    def _measure(self, series_mm, times_s, onset_s, previous_s) -> MotionResponse:
        return stimulus_motion(
            series_mm,
            times_s,
            onset_s,
            baseline_s=self.baseline_s,
            window_s=self.window_s,
            previous_onset_s=previous_s,
            max_hole_s=None,  # arrival times: no proof of a hole (above)
        )[0]


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
