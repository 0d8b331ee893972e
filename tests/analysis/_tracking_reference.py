"""Slow, obvious references the midline tracking's Numba kernels must match."""

from __future__ import annotations

import numpy as np


def thin_reference(mask: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning, whole sub-passes at a time with shifted arrays."""
    img = mask.astype(np.int64).copy()
    while True:
        changed = False
        for step in range(2):
            p = np.pad(img, 1)
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:],
                 p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]  # fmt: skip
            p2, p3, p4, p5, p6, p7, p8, p9 = n
            b = sum(n)
            ring = [*n, p2]
            a = sum((ring[i] == 0) & (ring[i + 1] == 1) for i in range(8))
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (img == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            remove[0, :] = remove[-1, :] = remove[:, 0] = remove[:, -1] = False
            if remove.any():
                img[remove] = 0
                changed = True
        if not changed:
            return img.astype(np.uint8)


def cross_section_edges_reference(profiles, levels, centre):
    """Each row's last sample below the level on either side of ``centre``."""
    left, right = [], []
    for row, level in zip(profiles, levels, strict=True):
        below = row < level
        lo = hi = np.nan
        if not below[centre]:
            before = np.flatnonzero(below[:centre])
            if before.size:
                i = before[-1]  # below; i + 1 is above
                lo = (i + 1) - (row[i + 1] - level) / (row[i + 1] - row[i])
            after = np.flatnonzero(below[centre:])
            if after.size:
                i = centre + after[0]  # below; i − 1 is above
                hi = (i - 1) + (row[i - 1] - level) / (row[i - 1] - row[i])
        left.append(lo)
        right.append(hi)
    return np.array(left), np.array(right)


def match_bands_reference(predicted, found, tolerance):
    """Band by band from the head: the nearest unused found band to the
    prediction plus the last miss, searched over every candidate."""
    out = np.full(len(predicted), -1)
    miss, used_up_to = 0.0, -1
    for k, p in enumerate(predicted):
        if np.isnan(p):
            continue
        candidates = np.arange(used_up_to + 1, len(found))
        if candidates.size == 0:
            break
        target = p + miss
        dist = np.abs(found[candidates] - target)
        # The kernel walks forward: among equal distances the earlier one wins.
        j = candidates[int(np.argmin(dist))]
        if abs(found[j] - target) < tolerance:
            out[k] = j
            miss = found[j] - p
            used_up_to = j
    return out


def bilinear_reference(image, u, v):
    """scipy's order-1 spline (bilinear) at points (u, v), the border's value
    past the border."""
    from scipy.ndimage import map_coordinates

    h, w = image.shape
    coords = np.stack([np.clip(v, 0, h - 1), np.clip(u, 0, w - 1)])
    return map_coordinates(image.astype(float), coords, order=1, mode="nearest")


def cross_profiles_reference(image, points, tangents, reach, half_along):
    """Cross-sections as the mean over along-offsets of bilinear samples."""
    t = tangents[:, None, None, :]
    normal = np.stack([-tangents[:, 1], tangents[:, 0]], -1)[:, None, None, :]
    along = np.arange(-half_along, half_along + 1.0)[None, :, None, None]
    across = np.arange(-reach, reach + 1.0)[None, None, :, None]
    pts = points[:, None, None, :] + along * t + across * normal
    return bilinear_reference(image, pts[..., 0], pts[..., 1]).mean(axis=1)


def strip_means_reference(image, line, tangents, half):
    """The mean of bilinear samples across the strip at each point."""
    normal = np.stack([-tangents[:, 1], tangents[:, 0]], -1)
    across = np.arange(-half, half + 1.0)[:, None, None]
    pts = line[None] + across * normal[None]
    return bilinear_reference(image, pts[..., 0], pts[..., 1]).mean(axis=0)


def bspline_fit_reference(s, points, n_pieces, at):
    """The same spline by a dense design matrix and numpy's least squares."""
    step = s[-1] / n_pieces

    def design(x):
        piece = np.clip(np.floor(x / step), 0, n_pieces - 1).astype(int)
        u = x / step - piece
        w = np.column_stack([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4,
                             -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3]) / 6  # fmt: skip
        out = np.zeros((x.size, n_pieces + 3))
        for k in range(4):
            out[np.arange(x.size), piece + k] = w[:, k]
        return out

    coef, *_ = np.linalg.lstsq(design(s), points, rcond=None)
    return design(at) @ coef
