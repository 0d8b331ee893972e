"""Segment tracking in video: positions of the segment bands along the body axis.

The worm lies along the raceway's x axis. Per frame we average a thin strip of
rows around the body axis into an intensity profile along x; segment boundaries
are dark bands, i.e. local minima of that profile. Each minimum is refined to a
sub-pixel position (parabola through three points), undistorted with the camera
calibration if given, and converted to mm. Bands keep their identity from frame
to frame by nearest-neighbour matching to their previous positions (a twitch
moves a band far less than half a segment between frames at 30–120 fps).
Working on one strip, not the whole image, is what makes this fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SegmentTrack:
    """Tracked band positions: ``positions_mm`` (n_frames, n_bands), NaN if lost."""

    positions_mm: np.ndarray
    axis_row_px: float


def find_body_axis(frame: np.ndarray) -> int:
    """Row of the body axis: the brightest row band over the central columns."""
    f = np.asarray(frame, dtype=np.float32)
    w = f.shape[1]
    rows = f[:, w // 5 : 4 * w // 5].mean(axis=1)
    smooth = np.convolve(rows - np.median(rows), np.ones(5) / 5, mode="same")
    return int(np.argmax(smooth))


def band_minima(profile: np.ndarray, *, min_depth: float = 8.0) -> np.ndarray:
    """Sub-pixel x positions of dark bands in an intensity profile.

    A band is a local minimum with brighter segment interior on *both* sides
    (at least ``min_depth`` above it within 3 px each way): the edges of the
    body, bright on one side only, are not bands.
    """
    p = np.asarray(profile, dtype=np.float64)
    i = np.arange(3, p.size - 3)
    is_min = (p[i] < p[i - 1]) & (p[i] <= p[i + 1])
    i = i[is_min]
    left = np.maximum(np.maximum(p[i - 1], p[i - 2]), p[i - 3])
    right = np.maximum(np.maximum(p[i + 1], p[i + 2]), p[i + 3])
    i = i[np.minimum(left, right) - p[i] >= min_depth]
    y0, y1, y2 = p[i - 1], p[i], p[i + 1]
    denom = y0 - 2 * y1 + y2
    offset = np.where(denom != 0, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    return i + offset


class SegmentTracker:
    """Frame-by-frame tracker (online); ``track_segments`` runs it over a video."""

    def __init__(
        self,
        *,
        px_per_mm: float,
        origin_px: float = 0.0,
        axis_row_px: int | None = None,
        strip_half_px: int = 3,
        camera_matrix: np.ndarray | None = None,
        dist_coeffs: np.ndarray | None = None,
        min_depth: float = 8.0,
    ) -> None:
        if px_per_mm <= 0:
            raise ValueError(f"px_per_mm must be > 0, got {px_per_mm}")
        self.px_per_mm = px_per_mm
        self.origin_px = origin_px
        self.axis_row_px = axis_row_px
        self.strip_half_px = strip_half_px
        # Lens model (a camera calibration's, as arrays or lists), or None.
        self.camera_matrix = (
            None if camera_matrix is None else np.asarray(camera_matrix, float)
        )
        self.dist_coeffs = (
            None if dist_coeffs is None else np.asarray(dist_coeffs, float)
        )
        self.min_depth = min_depth
        self.reference: np.ndarray | None = None  # positions of the bands (mm)
        self._velocity: np.ndarray | None = None  # mm per frame

    def _to_mm(self, x_px: np.ndarray) -> np.ndarray:
        if self.camera_matrix is not None and x_px.size:
            import cv2

            assert self.axis_row_px is not None  # process() finds it first
            pts = np.column_stack([x_px, np.full(x_px.size, float(self.axis_row_px))])
            ideal = cv2.undistortPoints(
                pts.reshape(-1, 1, 2).astype(np.float64),
                self.camera_matrix,
                self.dist_coeffs,
                P=self.camera_matrix,
            ).reshape(-1, 2)
            x_px = ideal[:, 0]
        return (x_px - self.origin_px) / self.px_per_mm

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Band positions (mm) in this frame, in the first frame's band order."""
        if self.axis_row_px is None:
            self.axis_row_px = find_body_axis(frame)
        r, h = self.axis_row_px, self.strip_half_px
        profile = np.asarray(frame[r - h : r + h + 1], dtype=np.float32).mean(axis=0)
        found = self._to_mm(band_minima(profile, min_depth=self.min_depth))
        if self.reference is None:
            self.reference = found
            self._velocity = np.zeros_like(found)
            return found.copy()
        out = np.full(self.reference.size, np.nan)
        if found.size == 0:
            return out
        spacing = np.median(np.diff(self.reference)) if self.reference.size > 1 else 1.0
        # Predict where each band is now from its last two positions (constant
        # velocity): a fast twitch then stays matched to the right band.
        assert self._velocity is not None  # set with the reference
        predicted = self.reference + np.nan_to_num(self._velocity)
        j = np.searchsorted(found, predicted).clip(1, found.size - 1)
        left, right = found[j - 1], found[j]
        nearest = np.where(
            np.abs(left - predicted) <= np.abs(right - predicted), left, right
        )
        close = np.abs(nearest - predicted) < 0.45 * spacing
        out[close] = nearest[close]
        self._velocity = np.where(close, out - self.reference, 0.0)
        self.reference = np.where(close, out, self.reference)
        return out


def track_segments(frames, **tracker_kwargs) -> SegmentTrack:
    """Track every frame of ``frames`` (an iterable of 2-D uint8 arrays)."""
    tracker = SegmentTracker(**tracker_kwargs)
    rows = [tracker.process(frame) for frame in frames]
    width = max((r.size for r in rows), default=0)
    positions = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        positions[i, : r.size] = r
    return SegmentTrack(positions, float(tracker.axis_row_px or 0))
