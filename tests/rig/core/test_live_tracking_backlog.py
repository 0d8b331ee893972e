"""Live tracking is fed through a short queue: a tracking thread held up for a
moment catches up on every frame; only beyond BACKLOG_FRAMES waiting is the
oldest skipped (counted), and closing tracks what is still waiting."""

from __future__ import annotations

import threading

import numpy as np

from rig.core.live_tracking import BACKLOG_FRAMES, LiveTracking


def test_a_stalled_tracker_catches_up_and_skips_only_beyond_its_backlog():
    tracking = LiveTracking(
        px_per_mm=10.0, origin_px=(0.0, 0.0), region_centres_mm=[40.0],
        sample_rate_hz=30_000.0,
    )  # fmt: skip
    busy, release = threading.Event(), threading.Event()
    tracked: list[int | None] = []

    def stalled(frame, sample, index):  # the tracking thread, held up
        busy.set()
        release.wait(10)
        tracked.append(index)

    tracking.on_frame = stalled  # type: ignore[method-assign]
    frame = np.zeros((8, 8), np.uint8)
    tracking.submit(frame, 0, 0)
    assert busy.wait(5)  # frame 0 is being tracked; the rest wait
    for index in range(1, BACKLOG_FRAMES + 1):
        tracking.submit(frame, index, index)
    assert tracking.frames_skipped == 0  # a full backlog, nothing lost
    extra = 3
    for index in range(BACKLOG_FRAMES + 1, BACKLOG_FRAMES + 1 + extra):
        tracking.submit(frame, index, index)
    assert tracking.frames_skipped == extra  # the oldest waiting: 1, 2, 3
    release.set()
    tracking.close()  # tracks what waits, then stops
    assert tracked == [0, *range(1 + extra, BACKLOG_FRAMES + 1 + extra)]
