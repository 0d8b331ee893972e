"""Live analysis of a session: APs per stimulus, and, with a camera, its twitch.

What can run depends on what the rig description gives: electrode positions
for the online AP analysis (and the closed loop); the raceway placed in the
image as well for live segment tracking and per-stimulus motion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rig.core._events import RigEvents
from rig.core.acquisition import Acquisition
from rig.core.live_tracking import LiveTracking
from rig.core.online_analysis import OnlineResponses
from rig.core.online_motion import OnlineMotion
from rig.rig_file import RigDescription

log = logging.getLogger(__name__)


class LiveAnalysis:
    """The online consumers of one session's acquisition (any may be None)."""

    def __init__(
        self,
        rig: RigDescription,
        acquisition: Acquisition,
        events: RigEvents,
        *,
        fs_hz: float,
        n_channels: int,
        uv_per_count: Any,
        requested_vpp: Callable[[int], float],
        camera: Any = None,
        camera_calibration: Any = None,
    ) -> None:
        self.online: OnlineResponses | None = None
        self.tracking: LiveTracking | None = None
        self.motion: OnlineMotion | None = None
        if rig.pair_centres_m is None:
            return  # nothing to measure a propagation or a region against
        self.online = OnlineResponses(
            fs_hz=fs_hz,
            n_channels=n_channels,
            positions_m=np.asarray(rig.pair_centres_m),
            uv_per_count=uv_per_count,
            emit=events.response_measured.emit,
            requested_vpp=requested_vpp,
            stim_electrodes_m=rig.stim_electrodes_m,
        )
        acquisition.add_consumer(self.online.consume)
        if camera is not None:
            self.tracking = live_tracking_for(rig, camera_calibration, fs_hz)
        if self.tracking is not None:
            self.motion = OnlineMotion(
                self.tracking,
                fs_hz=fs_hz,
                emit=events.motion_measured.emit,
                requested_vpp=requested_vpp,
            )
            acquisition.add_consumer(self.motion.consume)

    def warm_up(self) -> None:
        """Compile (or load) the online analysis's kernels before the board is
        armed (``OnlineResponses.warm_up``): said in the log when it took long
        (the first run after an install)."""
        if self.online is None:
            return
        started = time.monotonic()
        try:
            self.online.warm_up()
        except Exception as error:  # a session starts regardless: said, not raised
            log.warning(
                "the online analysis could not be prepared (%s): its first "
                "stimulus may hold the host long enough to lose the board",
                error,
            )
            return
        took = time.monotonic() - started
        if took > 2.0:
            log.info("online analysis prepared in %.1f s (compiled: first run)", took)

    def warnings(self, calibrations: Any, camera: Any) -> list[str]:
        """What the session cannot do for want of a calibration or the rig file:
        shown in the GUI's status bar and by ``neurorig run``."""
        warnings = list(getattr(calibrations, "warnings", []))
        if self.online is None:
            warnings.append(
                "no electrode positions (rig file [electrodes] or "
                "--electrode-positions-mm): no online analysis or closed loop"
            )
        if camera is not None and self.tracking is None:
            warnings.append(
                "no live segment tracking: the rig file's [camera] places the "
                "raceway in the image"
            )
        return warnings

    def close(self) -> None:
        """Stop the tracking thread."""
        if self.tracking is not None:
            self.tracking.close()


def live_tracking_for(
    rig: RigDescription, camera_calibration: Any, sample_rate_hz: float
) -> LiveTracking | None:
    """Tracking of each recording pair's body region, or None when the rig
    description cannot place the raceway in the image (no electrode positions,
    no raceway origin, no scale)."""
    if rig.pair_centres_m is None or rig.raceway_origin_px is None:
        return None
    px_per_mm = rig.px_per_mm
    lens = None
    if camera_calibration is not None:  # calibration.CameraCalibration
        px_per_mm = camera_calibration.px_per_mm
        lens = {
            "camera_matrix": camera_calibration.camera_matrix,
            "dist_coeffs": camera_calibration.dist_coeffs,
        }
    if not px_per_mm:
        log.warning("no live tracking: no px/mm (camera calibration or rig file)")
        return None
    # Regions along the body, mm from the head (the tracking's coordinate).
    centres_m = np.asarray(rig.pair_centres_m)
    return LiveTracking(
        px_per_mm=px_per_mm,
        origin_px=rig.raceway_origin_px,
        region_centres_mm=centres_m * 1000,
        sample_rate_hz=sample_rate_hz,
        lens=lens,
    )
