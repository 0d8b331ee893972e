"""Live segment tracking for a rig, where its geometry places the raceway."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from rig.core.live_tracking import LiveTracking
from rig.rig_file import RigDescription

log = logging.getLogger(__name__)


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
    centres_m = rig.head_on_raceway_m + np.asarray(rig.pair_centres_m)
    return LiveTracking(
        px_per_mm=px_per_mm,
        origin_px=rig.raceway_origin_px,
        region_centres_mm=centres_m * 1000,
        sample_rate_hz=sample_rate_hz,
        lens=lens,
    )
