"""Numba kernels of the midline tracking (``analysis.midline``).

Arrays and scalars only. Each has a plain numpy reference in
tests/analysis/_tracking_reference.py that it must match
(tests/analysis/test_tracking_kernels.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def thin(mask):
    """Zhang–Suen thinning of a binary image (uint8, 0/1), in place.

    Peels boundary pixels in two alternating sub-passes until none can go,
    keeping 8-connectivity: what is left is a one-pixel-wide skeleton along the
    middle of each blob. Zhang & Suen (1984), Commun. ACM 27:236. The image's
    outermost rows and columns must be 0.
    """
    h, w = mask.shape
    remove = np.zeros((h, w), dtype=np.uint8)
    changed = True
    while changed:
        changed = False
        for step in range(2):
            for i in range(1, h - 1):
                for j in range(1, w - 1):
                    if mask[i, j] == 0:
                        continue
                    # Neighbours P2..P9, clockwise from north.
                    p2 = mask[i - 1, j]
                    p3 = mask[i - 1, j + 1]
                    p4 = mask[i, j + 1]
                    p5 = mask[i + 1, j + 1]
                    p6 = mask[i + 1, j]
                    p7 = mask[i + 1, j - 1]
                    p8 = mask[i, j - 1]
                    p9 = mask[i - 1, j - 1]
                    b = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
                    if b < 2 or b > 6:
                        continue
                    a = (
                        (p2 == 0 and p3 == 1)
                        + (p3 == 0 and p4 == 1)
                        + (p4 == 0 and p5 == 1)
                        + (p5 == 0 and p6 == 1)
                        + (p6 == 0 and p7 == 1)
                        + (p7 == 0 and p8 == 1)
                        + (p8 == 0 and p9 == 1)
                        + (p9 == 0 and p2 == 1)
                    )
                    if a != 1:
                        continue
                    if step == 0:
                        if p2 * p4 * p6 != 0 or p4 * p6 * p8 != 0:
                            continue
                    elif p2 * p4 * p8 != 0 or p2 * p6 * p8 != 0:
                        continue
                    remove[i, j] = 1
            for i in range(1, h - 1):
                for j in range(1, w - 1):
                    if remove[i, j]:
                        mask[i, j] = 0
                        remove[i, j] = 0
                        changed = True
    return mask


@njit(cache=True, nogil=True)
def cross_section_edges(profiles, levels, centre):
    """The body's two edges in each cross-section, walking out from the middle.

    ``profiles``: float64 ``(n, m)``, intensity across the body at one-sample
    steps; ``levels``: ``(n,)`` the half-way level between background and
    body; ``centre``: the sample where the search starts (the predicted
    midline). Returns ``(left, right)``, fractional sample positions where the
    profile first falls below the level on each side (linear between samples);
    NaN where the centre itself is below the level or no edge is found.
    """
    n, m = profiles.shape
    left = np.full(n, np.nan)
    right = np.full(n, np.nan)
    for r in range(n):
        level = levels[r]
        if profiles[r, centre] < level:
            continue
        for i in range(centre, 0, -1):
            a, b = profiles[r, i], profiles[r, i - 1]
            if b < level:
                left[r] = i - (a - level) / (a - b)
                break
        for i in range(centre, m - 1):
            a, b = profiles[r, i], profiles[r, i + 1]
            if b < level:
                right[r] = i + (a - level) / (a - b)
                break
    return left, right


@njit(cache=True, nogil=True)
def match_bands(predicted, found, tolerance):
    """Which band found in a frame is each tracked band.

    ``predicted``: ``(n,)`` where each tracked band should be (head first,
    increasing; NaN: no prediction); ``found``: ``(m,)`` the band positions
    found, sorted; ``tolerance``: the largest miss accepted. Bands are matched
    from the head backwards, in order (bands never pass each other), each to
    the found band nearest its prediction *plus the miss of the last band
    matched*: a deformation the prediction did not foresee (a twitch
    starting) is smooth along the body, so it is carried from band to band
    instead of having to stay within the tolerance everywhere. Returns
    ``(n,)`` indices into ``found``, −1 where none lay within the tolerance.
    """
    n = predicted.size
    m = found.size
    out = np.full(n, -1, dtype=np.int64)
    miss = 0.0
    j = 0
    for k in range(n):
        p = predicted[k]
        if np.isnan(p):
            continue
        p += miss
        while j < m and found[j] < p - tolerance:
            j += 1
        if j >= m:
            break
        while j + 1 < m and abs(found[j + 1] - p) < abs(found[j] - p):
            j += 1
        if abs(found[j] - p) < tolerance:
            out[k] = j
            miss = found[j] - predicted[k]
            j += 1
    return out


@njit(cache=True, nogil=True)
def _bilinear(image, u, v):
    """``image`` at the point ``(u, v)`` (column, row), bilinear; points past
    the border take the border's value."""
    h, w = image.shape
    u = min(max(u, 0.0), w - 1.0)
    v = min(max(v, 0.0), h - 1.0)
    j = min(int(u), w - 2)
    i = min(int(v), h - 2)
    fu = u - j
    fv = v - i
    top = image[i, j] * (1.0 - fu) + image[i, j + 1] * fu
    bottom = image[i + 1, j] * (1.0 - fu) + image[i + 1, j + 1] * fu
    return top * (1.0 - fv) + bottom * fv


@njit(cache=True, nogil=True)
def cross_profiles(image, points, tangents, reach, half_along):
    """Intensity across the body at each of ``points``: ``(n, 2·reach + 1)``.

    Sample ``c`` of row ``k`` is the mean of the image (bilinear) at
    ``points[k] + a·tangents[k] + (c − reach)·normal`` for ``a`` in
    ``−half_along … half_along`` (px), where the normal is the tangent turned
    by +90° (``(−t_v, t_u)``).
    """
    n = points.shape[0]
    m = 2 * reach + 1
    out = np.zeros((n, m))
    count = 2 * half_along + 1
    for k in range(n):
        tu, tv = tangents[k, 0], tangents[k, 1]
        for c in range(m):
            d = c - reach
            total = 0.0
            for a in range(-half_along, half_along + 1):
                u = points[k, 0] + a * tu - d * tv
                v = points[k, 1] + a * tv + d * tu
                total += _bilinear(image, u, v)
            out[k, c] = total / count
    return out


@njit(cache=True, nogil=True)
def strip_means(image, line, tangents, half):
    """Mean intensity across a strip ``±half`` px wide at each point of
    ``line``: ``(n,)``, bilinear samples one pixel apart along the normal."""
    n = line.shape[0]
    out = np.zeros(n)
    for k in range(n):
        tu, tv = tangents[k, 0], tangents[k, 1]
        total = 0.0
        for d in range(-half, half + 1):
            total += _bilinear(image, line[k, 0] - d * tv, line[k, 1] + d * tu)
        out[k] = total / (2 * half + 1)
    return out


@njit(cache=True, nogil=True)
def _bspline_weights(x, n_pieces, out):
    """Piece of ``x`` (knot intervals) and its four uniform cubic B-spline
    weights into ``out``; beyond the ends the end pieces run on."""
    piece = int(np.floor(x))
    piece = min(max(piece, 0), n_pieces - 1)
    u = x - piece
    out[0] = (1 - u) ** 3 / 6.0
    out[1] = (3 * u**3 - 6 * u**2 + 4) / 6.0
    out[2] = (-3 * u**3 + 3 * u**2 + 3 * u + 1) / 6.0
    out[3] = u**3 / 6.0
    return piece


@njit(cache=True, nogil=True)
def bspline_fit(s, points, n_pieces, at):
    """Least-squares uniform cubic B-spline through ``points`` ``(n, 2)`` at
    parameters ``s`` (knots every ``s[-1] / n_pieces``), evaluated at ``at``:
    ``(len(at), 2)``. Normal equations (banded, built point by point), one
    small solve."""
    step = s[-1] / n_pieces
    m = n_pieces + 3
    gram = np.zeros((m, m))
    rhs = np.zeros((m, 2))
    w = np.empty(4)
    for i in range(s.size):
        p = _bspline_weights(s[i] / step, n_pieces, w)
        for a in range(4):
            rhs[p + a, 0] += w[a] * points[i, 0]
            rhs[p + a, 1] += w[a] * points[i, 1]
            for b in range(4):
                gram[p + a, p + b] += w[a] * w[b]
    coef = np.linalg.solve(gram, rhs)
    out = np.zeros((at.size, 2))
    for i in range(at.size):
        p = _bspline_weights(at[i] / step, n_pieces, w)
        for a in range(4):
            out[i, 0] += w[a] * coef[p + a, 0]
            out[i, 1] += w[a] * coef[p + a, 1]
    return out
