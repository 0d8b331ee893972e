"""Segment tracking along the worm's midline: a body that bends and drifts.

Per frame (``MidlineTracker.process``):

1. **Midline.** The body's centre-line, refined from the previous frame's by
   cross-sections (``analysis._body_line.refine``: each cross-section's two
   edges give the centre; a smooth spline through the centres), or found from
   scratch (threshold, morphology, skeleton, spline) on the first frame and
   whenever the refinement loses the body.
2. **Bands along it.** The mean intensity of a strip 7 px wide along the
   midline, one sample per pixel of arc; segment boundaries are its dark
   minima with brighter body on both sides (``tracking.band_minima``:
   sub-pixel by parabola). The tips are where the strip turns from background
   to body, half-way between the two.
3. **Millimetres.** Band and midline points are undistorted with the camera
   calibration if given (``camera_matrix``, ``dist_coeffs``) and scaled by
   ``px_per_mm``: each band's position on the raceway (``xy_mm``, from
   ``origin_px``) and its **position along the body**, the arc length of the
   midline from the head tip (mm). Positions along the body do not change
   when the worm crawls or bends, only when it contracts: displacement and
   strain (``analysis.displacement``) are of the body itself.
4. **Identity.** A band keeps the index it got in the first frame. Each
   frame, every band is predicted at its last position plus its last
   velocity (constant velocity, along the body), and the bands found are
   matched to the predictions from the head backwards
   (``_tracking_kernels.match_bands``): the head tip anchors the match (its
   position is found every frame, whatever the twitch), and the part of the
   motion the prediction missed is carried from each band to the next, so a
   twitch that moves bands a whole segment or more between frames keeps
   every band's identity — matching each band alone to its nearest
   neighbour would lose it beyond half a segment. A band not found is
   carried with its neighbours (its position interpolated from theirs) and
   picked up again when it reappears; when fewer than half the bands match
   (a glitch, frames without the worm) they are matched again against their
   last positions, without velocities.

The head is the end nearer the image's left (the raceway's x = 0) in the
first frame, and the end nearer the last head position after that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis import _body_line
from analysis._tracking_kernels import match_bands
from analysis.tracking import band_minima

# A band may miss its prediction (after the miss of the band before it) by at
# most this fraction of the segment spacing.
MATCH_TOLERANCE = 0.45
# Below this fraction of the bands matched, match again without velocities.
REACQUIRE_BELOW = 0.5
# A first frame with fewer bands than this is not a worm to track.
MIN_BANDS = 5


@dataclass(frozen=True, slots=True)
class MidlineTrack:
    """Tracked bands over frames; NaN where a band (or the frame) was lost."""

    positions_mm: np.ndarray  # (n_frames, n_bands): along the body, from the head
    xy_mm: np.ndarray  # (n_frames, n_bands, 2): on the raceway, from origin_px
    head_xy_mm: np.ndarray  # (n_frames, 2): the head tip on the raceway


class MidlineTracker:
    """Frame-by-frame tracker (online); ``track_midline`` runs it over a video.

    ``origin_px``: the image point of raceway (0, 0), ``(u, v)``, or ``u``
    alone (then v = 0). ``strip_half_px``: half the width of the strip whose
    intensity is read along the midline.
    """

    def __init__(
        self,
        *,
        px_per_mm: float,
        origin_px: float | tuple[float, float] = 0.0,
        camera_matrix: np.ndarray | None = None,
        dist_coeffs: np.ndarray | None = None,
        min_depth: float = 8.0,
        strip_half_px: int = 3,
    ) -> None:
        if not px_per_mm > 0:
            raise ValueError(f"px_per_mm must be > 0, got {px_per_mm}")
        self.px_per_mm = float(px_per_mm)
        origin = np.atleast_1d(np.asarray(origin_px, dtype=float))
        if origin.size not in (1, 2):
            raise ValueError(f"origin_px must be u or (u, v), got {origin_px!r}")
        self.origin_px = np.array([origin[0], origin[1] if origin.size == 2 else 0.0])
        self.camera_matrix = (
            None if camera_matrix is None else np.asarray(camera_matrix, float)
        )
        self.dist_coeffs = (
            None if dist_coeffs is None else np.asarray(dist_coeffs, float)
        )
        self.min_depth = min_depth
        self.strip_half_px = strip_half_px
        self.reference: np.ndarray | None = None  # along the body, first frame
        self.frames = 0
        self.frames_lost = 0  # no worm, no midline or no tips found
        self.reacquired = 0  # frames matched again without velocities
        self.midlines_found = 0  # midlines found from scratch (not refined)
        self.line_px: np.ndarray | None = None  # the midline (image px), head first
        self.half_width_px = 0.0
        self.last_bands_px = np.empty((0, 2))  # where each band is in the image
        self.last_xy_mm = np.empty((0, 2))
        self.last_head_xy_mm = np.full(2, np.nan)
        self._current: np.ndarray | None = None  # positions, lost ones filled
        self._velocity: np.ndarray | None = None  # mm per frame
        self._head_px: np.ndarray | None = None
        self._spacing = 1.0  # median band spacing in the first frame (mm)
        # The last frame's midline, each of its points' distance from the
        # head (mm) and the tail's.
        self._along_line: tuple[np.ndarray, np.ndarray, float] | None = None

    # ------------------------------------------------------------ per frame

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Band positions along the body (mm from the head), in the first
        frame's band order; NaN where a band was not found."""
        image = np.asarray(frame)
        if image.ndim != 2:
            raise ValueError(
                f"frame must be a grayscale image (height, width), got {image.shape}"
            )
        self.frames += 1
        # The kernels read any numeric image as it is (no float copy).
        image = np.ascontiguousarray(image)
        line = self._midline(image)
        found = None if line is None else self._bands(image, line)
        # Band identities come from the first frame with a body of bands.
        if found is None or (self.reference is None and found[0].size < MIN_BANDS):
            self.frames_lost += 1
            return self._lost()
        along, bands_px, xy = found
        if self.reference is None:
            self.reference = along.copy()
            self._spacing = float(np.median(np.diff(along)))
            self._current = along.copy()
            self._velocity = np.zeros_like(along)
            self.last_bands_px, self.last_xy_mm = bands_px, xy
            return along.copy()
        index = self._identify(along)
        got = index >= 0
        out = np.where(got, along[index], np.nan)
        self.last_bands_px = np.where(got[:, None], bands_px[index], np.nan)
        self.last_xy_mm = np.where(got[:, None], xy[index], np.nan)
        self._update(out)
        return out

    def image_points_px(self, along_mm: np.ndarray) -> np.ndarray:
        """Where points ``along_mm`` from the head lay in the last frame
        tracked: ``(n, 2)`` image px, NaN off the body or with no frame."""
        along = np.atleast_1d(np.asarray(along_mm, dtype=float))
        out = np.full((along.size, 2), np.nan)
        if self._along_line is None:
            return out
        line, along_line, tail = self._along_line
        on = (along >= 0) & (along <= tail)
        arc = np.interp(along[on], along_line, np.arange(line.shape[0], dtype=float))
        idx = np.arange(line.shape[0], dtype=float)
        out[on, 0] = np.interp(arc, idx, line[:, 0])
        out[on, 1] = np.interp(arc, idx, line[:, 1])
        return out

    def _lost(self) -> np.ndarray:
        n = 0 if self.reference is None else self.reference.size
        self._along_line = None
        self.last_bands_px = np.full((n, 2), np.nan)
        self.last_xy_mm = np.full((n, 2), np.nan)
        self.last_head_xy_mm = np.full(2, np.nan)
        if self._velocity is not None:
            self._velocity[:] = 0.0
        return np.full(n, np.nan)

    def _midline(self, image: np.ndarray) -> np.ndarray | None:
        """The midline in ``image``: the last one refined, else found anew."""
        if self.line_px is not None:
            refined = _body_line.refine(image, self.line_px, self.half_width_px)
            if refined is not None:
                self.line_px = refined[0]
                return self.line_px
        self.midlines_found += 1
        acquired = _body_line.acquire(image)
        if acquired is None:
            self.line_px = None
            return None
        line, self.half_width_px = acquired
        if self._head_px is not None and np.hypot(
            *(line[-1] - self._head_px)
        ) < np.hypot(*(line[0] - self._head_px)):
            line = line[::-1].copy()  # keep the head the head
        for _ in range(3):  # from pixel skeleton to sub-pixel centre-line
            refined = _body_line.refine(image, line, self.half_width_px)
            if refined is None:
                self.line_px = None
                return None
            line = refined[0]
        self.line_px = line
        return line

    def _bands(
        self, image: np.ndarray, line: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Bands along the midline: (along mm, image px, raceway mm), head first."""
        profile = _body_line.strip_profile(image, line, self.strip_half_px)
        tips = _tips(profile)
        if tips is None:
            return None
        head, tail = tips
        first, last = int(np.ceil(head)), int(np.floor(tail))
        minima = band_minima(profile[first : last + 1], min_depth=self.min_depth)
        arc = np.arange(line.shape[0], dtype=float)  # ~1-px steps along the line
        at = np.concatenate([[head], minima + first])
        points = np.column_stack(
            [np.interp(at, arc, line[:, 0]), np.interp(at, arc, line[:, 1])]
        )
        # Lengths along the body come from the undistorted midline (one
        # undistortion for it and the band points).
        ideal = self._undistort(np.vstack([line, points]))
        ideal_line, ideal_points = ideal[: line.shape[0]], ideal[line.shape[0] :]
        step_mm = np.hypot(*np.diff(ideal_line, axis=0).T) / self.px_per_mm
        along_line = np.concatenate([[0.0], np.cumsum(step_mm)])
        along = np.interp(at, arc, along_line)
        xy = (ideal_points - self.origin_px) / self.px_per_mm
        self._head_px = points[0]
        self.last_head_xy_mm = xy[0]
        tail = float(np.interp(tips[1], arc, along_line))
        self._along_line = (line, along_line - along[0], tail - along[0])
        return along[1:] - along[0], points[1:], xy[1:]

    def _undistort(self, points_px: np.ndarray) -> np.ndarray:
        if self.camera_matrix is None or points_px.size == 0:
            return points_px
        import cv2

        return cv2.undistortPoints(
            points_px.reshape(-1, 1, 2).astype(np.float64),
            self.camera_matrix,
            self.dist_coeffs,
            P=self.camera_matrix,
        ).reshape(-1, 2)

    # ------------------------------------------------------------ identity

    def _identify(self, found: np.ndarray) -> np.ndarray:
        """Index into ``found`` of each tracked band (−1: not found)."""
        assert self.reference is not None and self._current is not None
        assert self._velocity is not None  # set with the reference
        tolerance = MATCH_TOLERANCE * self._spacing
        index = match_bands(self._current + self._velocity, found, tolerance)
        if (index >= 0).mean() < REACQUIRE_BELOW:
            self.reacquired += 1
            index = match_bands(self._current, found, tolerance)
        return index

    def _update(self, matched: np.ndarray) -> None:
        """Positions and velocities for the next prediction."""
        assert self.reference is not None and self._current is not None
        got = np.isfinite(matched)
        if not got.any():
            assert self._velocity is not None
            self._velocity[:] = 0.0
            return
        # A band not found moves with its neighbours.
        shift = matched[got] - self.reference[got]
        filled = self.reference + np.interp(self.reference, self.reference[got], shift)
        current = np.where(got, matched, filled)
        self._velocity = np.where(got, current - self._current, 0.0)
        self._current = current


def _tips(profile: np.ndarray) -> tuple[float, float] | None:
    """Where the strip turns from background to body at each end (fractional
    samples from the head end), half-way between the two; None if the body
    does not end inside the profile at both ends."""
    n = profile.size
    edge = int(_body_line.EXTEND_PX) // 2
    if n < 4 * edge:
        return None
    body = float(np.median(profile[2 * edge : n - 2 * edge]))
    tips = []
    for p in (profile, profile[::-1]):
        background = float(p[:edge].mean())
        if body - background < 10.0:  # no contrast
            return None
        i = _crossing(p, 0.5 * (background + body))
        if i is None:
            return None
        tips.append(i)
    head, tail = tips[0], n - 1 - tips[1]
    if tail - head < 4 * edge:
        return None
    return head, tail


def _crossing(p: np.ndarray, level: float) -> float | None:
    """First fractional index where ``p`` rises to ``level`` (linear)."""
    inside = np.flatnonzero(p >= level)
    if inside.size == 0 or inside[0] == 0:
        return None
    i = int(inside[0])
    return i - 1 + (level - p[i - 1]) / (p[i] - p[i - 1])


def track_midline(frames, **tracker_kwargs) -> MidlineTrack:
    """Track every frame of ``frames`` (an iterable of 2-D uint8 arrays)."""
    tracker = MidlineTracker(**tracker_kwargs)
    rows, xys, heads = [], [], []
    for frame in frames:
        rows.append(tracker.process(frame))
        xys.append(tracker.last_xy_mm)
        heads.append(tracker.last_head_xy_mm)
    width = max((r.size for r in rows), default=0)
    positions = np.full((len(rows), width), np.nan)
    xy = np.full((len(rows), width, 2), np.nan)
    for i, (r, p) in enumerate(zip(rows, xys, strict=True)):
        positions[i, : r.size] = r
        xy[i, : p.shape[0]] = p
    head = np.array(heads).reshape(len(rows), 2)
    return MidlineTrack(positions, xy, head)
