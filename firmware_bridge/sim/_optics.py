"""Optics of the simulated camera above the raceway: scale, placement, lens distortion.

Shared by the synthetic worm camera and the rendered calibration targets, so that a
camera calibration made on the simulated rig recovers exactly these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class CameraOptics:
    """Pinhole camera looking down on the raceway plane, with radial distortion.

    Raceway coordinates: ``x`` along the raceway (the worm's body axis, head end at
    ``x = 0``), ``y`` across it, both in metres on the raceway plane. The undistorted
    image of raceway point ``(x, y)`` is
    ``(u, v) = origin_px + px_per_mm · 1000 · (x, y)``; the lens then applies OpenCV's
    radial model ``r_d = r (1 + k1 r² + k2 r⁴)`` in normalised coordinates about the
    principal point (image centre) with focal length ``focal_px``.
    """

    width_px: int = 640
    height_px: int = 480
    px_per_mm: float = 3.2  # 200 mm of raceway across 640 px
    origin_px: tuple[float, float] = (40.0, 240.0)  # image of raceway (0, 0)
    focal_px: float = 900.0
    k1: float = 0.0
    k2: float = 0.0

    @property
    def led_region_px(self) -> tuple[int, int, int, int]:
        """Where the timing LED is drawn: (top, bottom, left, right), top right."""
        return (12, 28, self.width_px - 28, self.width_px - 12)

    def camera_matrix(self) -> np.ndarray:
        """OpenCV 3×3 intrinsic matrix (principal point at the image centre)."""
        cx = (self.width_px - 1) / 2.0
        cy = (self.height_px - 1) / 2.0
        return np.array(
            [[self.focal_px, 0.0, cx], [0.0, self.focal_px, cy], [0.0, 0.0, 1.0]]
        )

    def dist_coeffs(self) -> np.ndarray:
        """OpenCV distortion vector ``(k1, k2, p1, p2, k3)``."""
        return np.array([self.k1, self.k2, 0.0, 0.0, 0.0])

    def raceway_to_undistorted_px(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Undistorted pixel coordinates ``(..., 2)`` of raceway points (metres)."""
        scale = self.px_per_mm * 1000.0
        u = self.origin_px[0] + scale * np.asarray(x_m, dtype=float)
        v = self.origin_px[1] + scale * np.asarray(y_m, dtype=float)
        return np.stack([u, v], axis=-1)
