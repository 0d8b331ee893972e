"""Calibration targets seen by the simulated camera: a checkerboard on the raceway.

Drawn through the same optics (scale, placement, lens distortion) as the worm, so a
camera calibration on the simulated rig recovers ``CameraOptics``'s numbers.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.sim._optics import CameraOptics
from firmware_bridge.sim.camera import _undistort_maps


def render_checkerboard(
    optics: CameraOptics | None = None,
    *,
    squares: tuple[int, int] = (9, 6),
    square_mm: float = 10.0,
    offset_mm: tuple[float, float] = (20.0, -30.0),
    angle_rad: float = 0.0,
    noise_seed: int = 0,
) -> np.ndarray:
    """A checkerboard lying on the raceway, ``offset_mm`` from the raceway origin."""
    o = optics or CameraOptics()
    h, w = o.height_px, o.width_px
    maps = _undistort_maps(o)
    if maps is None:
        uu, vv = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    else:
        uu, vv = maps[0].astype(float), maps[1].astype(float)
    # Pixel -> raceway mm -> board mm (rotation about the board's first corner).
    x = (uu - o.origin_px[0]) / o.px_per_mm - offset_mm[0]
    y = (vv - o.origin_px[1]) / o.px_per_mm - offset_mm[1]
    c, s = np.cos(-angle_rad), np.sin(-angle_rad)
    bx, by = c * x - s * y, s * x + c * y
    # Antialiased squares: smooth step over one pixel at every edge.
    px_mm = 1.0 / o.px_per_mm

    def soft_square_wave(t):
        phase = np.mod(t / square_mm, 2.0)
        d = np.minimum(np.abs(phase - 1.0), np.minimum(phase, 2.0 - phase)) * square_mm
        sign = np.where(phase < 1.0, 1.0, -1.0)
        return sign * np.clip(d / px_mm, 0.0, 0.5) * 2

    checker = soft_square_wave(bx) * soft_square_wave(by)  # −1 … 1
    inside = (
        (bx >= 0)
        & (bx <= squares[0] * square_mm)
        & (by >= 0)
        & (by <= squares[1] * square_mm)
    )
    margin = (
        (bx >= -square_mm)
        & (bx <= (squares[0] + 1) * square_mm)
        & (by >= -square_mm)
        & (by <= (squares[1] + 1) * square_mm)
    )
    image = np.full((h, w), 90.0)
    image[margin] = 225.0  # white border around the board
    image[inside] = 125.0 + 100.0 * checker[inside]
    rng = np.random.default_rng(noise_seed)
    image += rng.normal(0.0, 2.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
