"""Live segment tracking for the camera view: band positions and displacement per
electrode region, frame by frame, with the same tracker the offline analysis uses
(``analysis.midline.MidlineTracker``: bands along the body's midline, which may
bend and drift; positions in mm from the head along the body).

Runs on its own thread, fed from the camera thread through a short queue
(``BACKLOG_FRAMES``): the camera thread never waits for tracking (a late
camera thread would make its frames look dropped to the frame clock); a
tracking thread held up for a moment catches up instead of leaving a hole in
the tracked frames (a hole over a twitch leaves it unmeasured:
``analysis.displacement.MAX_TRACKING_HOLE_S``); under sustained load the oldest
waiting frame is skipped, so the display never falls behind for good.
Displacement follows the offline rule
(``analysis.displacement.OnlineDisplacement``: rest = the mean of the first
frames tracked), so the series equals ``analysis.displacement.displacement`` on
the frames tracked. Regions are the electrode pairs' centres ± 10 mm along
the body, mm from the head (``regions_mm``). The GUI pulls ``latest_bands_px``,
``region_points_px`` and ``displacement_series`` at display rate. Times are
device seconds: the newest camera trigger's sample when the frame arrived
(readout takes less than a frame period). The recording's frame table is
exact; this is for display and for the online motion measures
(``rig.core.online_motion``), which ``listeners`` call after every tracked
frame. ``frame_sinks`` get every tracked frame's band positions with its
frame-clock index: the session's recorder saves them into the recording
(``tracking.jsonl``), so ``neurorig analyze`` need not decode the video again.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import numpy as np

from analysis.displacement import OnlineDisplacement, electrode_regions_mm
from analysis.midline import MidlineTracker

log = logging.getLogger(__name__)

# Frames waiting to be tracked, at most (0.25 s at 60 fps): a stall of the
# tracking thread this long (the GIL, a loaded machine) costs no frame; with a
# one-frame mailbox, a saved tracking made under load read a peak 0.29 mm that
# re-tracking read 0.36. Tracking a frame takes a few ms: the backlog clears
# within a few frames.
BACKLOG_FRAMES = 15


class LiveTracking:
    """Tracks segment bands in each frame; keeps a short displacement history."""

    def __init__(
        self,
        *,
        px_per_mm: float,
        origin_px: float | tuple[float, float],
        region_centres_mm,
        sample_rate_hz: float,
        history_frames: int = 600,
        lens: dict | None = None,
    ) -> None:
        self.px_per_mm = px_per_mm
        self.origin_px = origin_px
        self.sample_rate_hz = sample_rate_hz
        self.regions_mm = electrode_regions_mm(region_centres_mm)
        # The offline analysis's displacement rule, a frame at a time.
        self.displacement = OnlineDisplacement(self.regions_mm)
        self.tracker = MidlineTracker(
            px_per_mm=px_per_mm, origin_px=origin_px, **(lens or {})
        )
        self._lock = threading.Lock()
        self._times_s: deque[float] = deque(maxlen=history_frames)
        self._disp_mm: deque[np.ndarray] = deque(maxlen=history_frames)
        self._whole_mm: deque[float] = deque(maxlen=history_frames)
        self._strain: deque[np.ndarray] = deque(maxlen=history_frames)
        self.lens = lens
        # listener(newest_time_s), on the tracking thread after each tracked frame
        self.listeners: list = []
        # sink(frame_clock_index, sample, positions_mm), likewise
        self.frame_sinks: list = []
        self._bands_px: np.ndarray | None = None
        self._region_px: list[tuple[float, float] | None] = []
        self.frames_tracked = 0
        self.frames_skipped = 0
        self.failures = 0
        self._waiting: deque[tuple[np.ndarray, int | None, int | None]] = deque(
            maxlen=BACKLOG_FRAMES
        )
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._loop, name="live-tracking", daemon=True
        )
        self._thread.start()

    def submit(
        self, frame: np.ndarray, sample: int | None, index: int | None = None
    ) -> None:
        """Camera thread: queue the newest frame (with ``BACKLOG_FRAMES``
        waiting, the oldest is skipped), seen at device ``sample``, number
        ``index`` on the frame clock."""
        with self._wake:
            if len(self._waiting) == self._waiting.maxlen:
                self.frames_skipped += 1  # the append drops the oldest
            self._waiting.append((frame, sample, index))
            self._wake.notify()

    def close(self) -> None:
        """Stop the tracking thread (after it has tracked the frames waiting:
        at most ``BACKLOG_FRAMES``, a few ms each)."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._stopped:
                    self._wake.wait()
                if not self._waiting:  # stopped, and every frame given tracked
                    return
                frame, sample, index = self._waiting.popleft()
            self.on_frame(frame, sample, index)

    def describe(self) -> dict:
        """How frames are tracked: the recording's ``metadata.tracking``."""
        lens = None
        if self.lens and self.lens.get("camera_matrix") is not None:
            lens = {
                key: np.asarray(self.lens[key], float).tolist()
                for key in ("camera_matrix", "dist_coeffs")
            }
        origin = np.atleast_1d(np.asarray(self.origin_px, float))
        return {
            "tracker": "analysis.midline.MidlineTracker",
            "px_per_mm": float(self.px_per_mm),
            "origin_px": origin.tolist(),
            "lens": lens,
            "regions_mm_from_head": [[lo, hi] for lo, hi in self.regions_mm],
            "rest_frames": self.displacement.rest_frames,
        }

    def on_frame(
        self, frame: np.ndarray, sample: int | None, index: int | None = None
    ) -> None:
        """Track one frame seen at device ``sample`` (None: not yet known),
        number ``index`` on the frame clock (None: not counted)."""
        try:
            positions_mm = self.tracker.process(frame)
        except Exception as exc:  # a bad frame must not stop the camera thread
            self.failures += 1
            log.debug("tracking failed on a frame: %s", exc)
            return
        rows = self.displacement.process(positions_mm)
        t = np.nan if sample is None else sample / self.sample_rate_hz
        with self._lock:
            self._bands_px = self.tracker.last_bands_px
            centres = [0.5 * (lo + hi) for lo, hi in self.regions_mm]
            self._region_px = [
                None if not np.isfinite(p).all() else (float(p[0]), float(p[1]))
                for p in self.tracker.image_points_px(np.array(centres))
            ]
            # Until the rest positions are fixed, a frame revises the earlier ones.
            revised = self.frames_tracked - rows.first_frame
            for _ in range(min(revised, len(self._disp_mm))):
                self._disp_mm.pop()
                self._whole_mm.pop()
                self._strain.pop()
            self._times_s.append(t)
            self._disp_mm.extend(rows.region_mm)
            self._strain.extend(rows.strain)
            self._whole_mm.extend(rows.body_mm.tolist())
            self.frames_tracked += 1
        if index is not None:
            for sink in list(self.frame_sinks):
                try:
                    sink(index, sample, positions_mm)
                except Exception:  # a sink's bug must not stop the tracking
                    log.exception("live-tracking frame sink failed")
        for listener in list(self.listeners):
            try:
                listener(t)
            except Exception:  # a listener's bug must not stop the tracking
                log.exception("live-tracking listener failed")

    def latest_bands_px(self) -> np.ndarray | None:
        """Where each band is in the newest frame tracked, ``(n, 2)`` image
        ``(u, v)`` px (NaN: not found); None before the first."""
        with self._lock:
            return self._bands_px

    def region_points_px(self) -> list[tuple[float, float] | None]:
        """Where each region's centre lies on the midline in the newest frame
        (image px); None for a region off the body."""
        with self._lock:
            return list(self._region_px)

    def motion_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times (device s), displacement per region and of the whole body (mm)."""
        times, regions, whole, _ = self.series()
        return times, regions, whole

    def series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One snapshot of the history: times (device s), displacement per
        region and of the whole body (mm), strain per region (length change /
        rest length)."""
        n_regions = len(self.regions_mm)
        with self._lock:
            times = np.array(self._times_s, dtype=float)
            whole = np.array(self._whole_mm, dtype=float)
            regions = (
                np.vstack(self._disp_mm) if self._disp_mm else np.empty((0, n_regions))
            )
            strain = (
                np.vstack(self._strain) if self._strain else np.empty((0, n_regions))
            )
        return times, regions, whole, strain

    def displacement_series(self) -> tuple[np.ndarray, np.ndarray]:
        """Times (device s) and displacement (m) per region, oldest first."""
        times, regions_mm, _ = self.motion_series()
        return times, regions_mm / 1000.0
