"""The worm's midline in an image: found from scratch, refined frame by frame,
and the intensity sampled along it (``analysis.midline`` uses these).

A midline is a polyline ``(n, 2)`` of image points ``(u, v)`` (px, distorted
image as filmed) one pixel apart along its length, head first.

* ``acquire``: threshold (Otsu, after a light blur), close the dark segment
  bands, keep the largest blob, thin it to a skeleton (Zhang–Suen), take the
  skeleton's longest path and fit a smooth curve through it.
* ``refine``: at knots along the current midline, intensity profiles across the
  body; each profile's two edges (half-way between background and body) give
  the body's centre there; a least-squares cubic B-spline through the centres
  is the new midline, extended a little past the last centres at both ends
  (where the tips are looked for). Sub-pixel, and smooth by construction: the
  spline's knots lie ``SPLINE_KNOT_PX`` apart, far closer than a worm bends.
* ``strip_profile``: the mean intensity of a strip along the midline.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from analysis._tracking_kernels import (
    bspline_fit,
    cross_profiles,
    cross_section_edges,
    strip_means,
    thin,
)

KNOT_PX = 6  # cross-sections this far apart along the midline
SPLINE_KNOT_PX = 24.0  # the fitted curve's knot spacing
EXTEND_PX = 14.0  # the midline runs on this far past the body's last centres
# Cross-sections this near the body's ends may cut its end face: left out.
END_TRIM_KNOTS = 1


def _cv2():
    import cv2  # OpenCV only where frames are handled

    return cv2


def resample(points: np.ndarray, step: float = 1.0) -> np.ndarray:
    """The polyline through ``points`` again, with points ``step`` px apart."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    grid = np.arange(0.0, s[-1] + 1e-9, step)
    return np.column_stack(
        [np.interp(grid, s, points[:, 0]), np.interp(grid, s, points[:, 1])]
    )


def tangents(line: np.ndarray) -> np.ndarray:
    """Unit tangents ``(n, 2)`` of a polyline (central differences)."""
    t = np.gradient(line, axis=0)
    return t / np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-12)[:, None]


def extend(line: np.ndarray, px: float) -> np.ndarray:
    """The polyline run on straight past both ends by ``px`` (1-px steps)."""
    n = round(px)
    if n <= 0 or line.shape[0] < 3:
        return line
    head_dir = line[0] - line[2]
    tail_dir = line[-1] - line[-3]
    head_dir /= np.hypot(*head_dir)
    tail_dir /= np.hypot(*tail_dir)
    steps = np.arange(n, 0, -1, dtype=float)[:, None]
    before = line[0] + steps * head_dir
    after = line[-1] + steps[::-1] * tail_dir
    return np.vstack([before, line, after])


def acquire(frame: np.ndarray) -> tuple[np.ndarray, float] | None:
    """A first midline from scratch, and the body's half-width (px).

    None when no worm-sized blob is in the image. The head end is the one
    further left in the image (the raceway's convention: head toward x = 0);
    the tracker keeps the ends apart from then on.
    """
    cv2 = _cv2()
    if frame.dtype != np.uint8:  # Otsu's threshold wants 8 bits
        lo, hi = float(frame.min()), float(frame.max())
        frame = ((frame - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    blurred = cv2.GaussianBlur(frame, (5, 5), 1.5)
    _, mask = cv2.threshold(blurred, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    blob = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[blob, :4]
    if max(w, h) < 40:  # a speck, not a worm
        return None
    # The blob alone, with a one-pixel empty border (thinning needs it).
    crop = np.zeros((h + 2, w + 2), dtype=np.uint8)
    crop[1:-1, 1:-1] = labels[y : y + h, x : x + w] == blob
    half_width = _half_width(crop, cv2)
    skeleton = thin(crop.copy())
    path = _longest_path(skeleton)
    if path is None or path.shape[0] < 20:
        return None
    # (row, col) in the crop → (u, v) in the image
    points = path[:, ::-1].astype(float) + np.array([x - 1.0, y - 1.0])
    if points[-1, 0] < points[0, 0]:
        points = points[::-1]
    # A thinned blob forks toward the corners of its ends: leave the last
    # half-width out, and run straight on from the rest.
    points = resample(points)
    trim = int(np.ceil(half_width))
    if points.shape[0] > 4 * trim + 20:
        points = points[trim:-trim]
    line = _fit(points, SPLINE_KNOT_PX)
    return extend(line, EXTEND_PX + trim), half_width


def _half_width(crop: np.ndarray, cv2) -> float:
    """The body's half-width (px): the distance to its edge along its middle."""
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, 5)
    return float(np.percentile(dist[dist > 0], 98))


def _longest_path(skeleton: np.ndarray) -> np.ndarray | None:
    """The skeleton's longest path (``(n, 2)`` row, col), spurs left out.

    Breadth-first from any pixel to the farthest one, then from there to the
    farthest again: the two ends of the skeleton's longest path (exact on a
    tree, which a thinned simple blob is).
    """
    rows, cols = np.nonzero(skeleton)
    if rows.size < 2:
        return None
    index = -np.ones(skeleton.shape, dtype=np.int64)
    index[rows, cols] = np.arange(rows.size)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        r2, c2 = rows + dr, cols + dc
        inside = (r2 < skeleton.shape[0]) & (c2 >= 0) & (c2 < skeleton.shape[1])
        other = np.full(rows.size, -1)
        other[inside] = index[r2[inside], c2[inside]]
        ok = other >= 0
        src.append(np.flatnonzero(ok))
        dst.append(other[ok])
    s, d = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(s.size), (s, d)), shape=(rows.size, rows.size)).tocsr()
    order, _ = breadth_first_order(graph, 0, directed=False)
    far, pred = breadth_first_order(graph, order[-1], directed=False)
    path = [far[-1]]
    while pred[path[-1]] >= 0:
        path.append(pred[path[-1]])
    ids = np.array(path)
    return np.column_stack([rows[ids], cols[ids]])


def _fit(points: np.ndarray, knot_px: float, extend_px: float = 0.0) -> np.ndarray:
    """A smooth curve through ``points``, sampled every pixel of its length
    (of the chords between ``points``: the same to ~1e-4 for points a few
    pixels apart), and run on ``extend_px`` past both ends along its end
    pieces (which follow the body's bend).

    A least-squares uniform cubic B-spline in arc length, its knots about
    ``knot_px`` apart (``_tracking_kernels.bspline_fit``: it runs every frame).
    """
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    n_pieces = max(round(s[-1] / knot_px), 1)
    at = np.arange(-extend_px, s[-1] + extend_px + 1e-9, 1.0)
    return bspline_fit(s, np.ascontiguousarray(points, dtype=float), n_pieces, at)


def refine(
    image: np.ndarray, line: np.ndarray, half_width: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The midline re-centred on the body in ``image``, extended past both ends.

    ``line``: the previous midline (1-px steps); ``half_width``: the body's
    (px). Returns the new midline and the centres it was fitted through, or
    None when too few cross-sections found the body.
    """
    reach = int(np.ceil(1.6 * half_width + 4))
    knots = np.arange(0, line.shape[0], KNOT_PX)
    p = line[knots]
    ahead = line[np.minimum(knots + 1, line.shape[0] - 1)]
    behind = line[np.maximum(knots - 1, 0)]
    tk = (ahead - behind) / np.hypot(*(ahead - behind).T)[:, None]
    nk = np.column_stack([-tk[:, 1], tk[:, 0]])
    # Each cross-section averaged over ±1 px along the body: the segment bands
    # run across it, so this damps them without moving the edges.
    profiles = cross_profiles(image, p, tk, reach, 1)
    background = 0.5 * (profiles[:, :3].mean(axis=1) + profiles[:, -3:].mean(axis=1))
    # Low on the edge: a rounded body is shaded darker toward its sides, and a
    # level above the side's brightness would find the edge on that gentle
    # shading instead of the sharp step from background to body.
    levels = background + 0.3 * (profiles.max(axis=1) - background)
    left, right = cross_section_edges(profiles, levels, reach)
    width = right - left
    contrast = profiles.max(axis=1) - background
    ok = np.isfinite(width) & (width > 0.5 * half_width) & (width < 3.0 * half_width)
    ok &= contrast > 0.25 * contrast.mean()
    if ok.sum() < 8:
        return None
    # The body's centres: one run of good cross-sections (the longest).
    first, last = _longest_run(ok)
    sel = np.arange(first + END_TRIM_KNOTS, last + 1 - END_TRIM_KNOTS)
    sel = sel[ok[sel]]
    offset = 0.5 * (left[sel] + right[sel]) - reach
    centres = p[sel] + offset[:, None] * nk[sel]
    if centres.shape[0] < 8:
        return None
    extend_px = EXTEND_PX + END_TRIM_KNOTS * KNOT_PX
    return _fit(centres, SPLINE_KNOT_PX, extend_px), centres


def _longest_run(ok: np.ndarray) -> tuple[int, int]:
    """First and last index of the longest run of ``ok``: a gap of up to two
    bad cross-sections (a glint, a band across a knot) does not split it."""
    idx = np.flatnonzero(ok)
    breaks = np.flatnonzero(np.diff(idx) > 3)
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, idx.size - 1]
    longest = int(np.argmax(idx[ends] - idx[starts]))
    return int(idx[starts[longest]]), int(idx[ends[longest]])


def strip_profile(image: np.ndarray, line: np.ndarray, half_px: int) -> np.ndarray:
    """Mean intensity across a strip ``±half_px`` wide along the midline."""
    return strip_means(image, line, tangents(line), half_px)
