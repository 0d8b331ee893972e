"""The simulated worm's posture on the raceway: a body that bends and crawls.

The muscle model (``WormModel.segment_boundaries_m``) says where each segment
boundary lies *along the body*; this module says where the body lies *on the
raceway*, and draws it for the camera. With the default ``WormParams`` the worm
is straight and still along the raceway's x axis (``Posture.still``), and the
camera draws it the way it always has.

The body's centre-line is given by its angle to the raceway's x axis at arc
length ``s`` from the head, at time ``t``::

    θ(s, t) = A·sin(2π(s/λ − t/T))

(``bend_amplitude_rad``, ``bend_wavelength_m``, ``bend_period_s``): a smooth
sinusoid whose shape changes slowly as the wave travels down the body. The head
lies at ``(head_x(t), 0)`` on the raceway, ``head_x`` drifting head first from
``head_on_raceway_m`` at ``crawl_speed_m_per_s`` and back, over
``crawl_range_m`` (a triangle wave). A point ``s`` metres along the body lies at
``head + ∫₀ˢ (cos θ, sin θ) ds'``: arc length along the centre-line is distance
along the body, so the ground truth of a bent worm is the same boundary
positions along the body, placed on the raceway by ``boundaries_xy_m``.

Nothing here is shared with the host's tracking (``analysis/midline.py``): the
image is drawn from the body coordinates of each pixel, found by projecting the
pixel on this centre-line, and the tracker has to find the centre-line again
from the pixels alone.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.sim._optics import CameraOptics
from firmware_bridge.sim.worm import WormModel

# Centre-line integration step (m): positions good to ~1e-7 m at the largest
# allowed bend.
_STEP_M = 2e-5
# Beyond each end the centre-line runs on straight, so that pixels past the
# tips project on it.
_EXTEND_M = 0.01


class Posture:
    """Where a ``WormModel``'s body lies on the raceway over time."""

    def __init__(self, model: WormModel) -> None:
        p, g = model.params, model.geometry
        self.fs_hz = model.fs_hz
        self.length_m = g.worm_length_m
        self.head_rest_m = g.head_on_raceway_m
        self.amplitude_rad = p.bend_amplitude_rad
        self.wavelength_m = p.bend_wavelength_m
        self.period_s = p.bend_period_s
        self.crawl_speed_m_per_s = p.crawl_speed_m_per_s
        self.crawl_range_m = p.crawl_range_m
        n = round((self.length_m + 2 * _EXTEND_M) / _STEP_M) + 1
        self._s = np.linspace(-_EXTEND_M, self.length_m + _EXTEND_M, n)

    @property
    def still(self) -> bool:
        """A straight worm that does not crawl: the camera's plain drawing."""
        return self.amplitude_rad == 0 and self.crawl_speed_m_per_s == 0

    def head_x_m(self, t_s: float) -> float:
        """Raceway x of the head at ``t_s``: drifts forward, then back."""
        if self.crawl_speed_m_per_s == 0:
            return self.head_rest_m
        travelled = self.crawl_speed_m_per_s * t_s / self.crawl_range_m
        phase = travelled % 2.0  # 0→1 forward, 1→2 back
        return self.head_rest_m - self.crawl_range_m * min(phase, 2.0 - phase)

    def heading_rad(self, s_m: np.ndarray, t_s: float) -> np.ndarray:
        """Angle of the body axis to the raceway's x axis, ``s_m`` from the head.

        Beyond the ends the axis runs straight on (the end's angle).
        """
        s = np.clip(np.asarray(s_m, dtype=float), 0.0, self.length_m)
        wave = s / self.wavelength_m - t_s / self.period_s
        return self.amplitude_rad * np.sin(2 * np.pi * wave)

    def centreline_m(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The centre-line at ``t_s``: arc lengths ``s`` (m from the head) and
        raceway points ``(len(s), 2)`` (m), every 20 µm, 10 mm past each end."""
        s = self._s
        theta = self.heading_rad(s, t_s)
        step = np.diff(s)
        # Trapezoids of the unit tangent, from the head (s = 0) both ways.
        cos_mid = 0.5 * (np.cos(theta[1:]) + np.cos(theta[:-1])) * step
        sin_mid = 0.5 * (np.sin(theta[1:]) + np.sin(theta[:-1])) * step
        x = np.concatenate([[0.0], np.cumsum(cos_mid)])
        y = np.concatenate([[0.0], np.cumsum(sin_mid)])
        head = int(np.argmin(np.abs(s)))
        xy = np.column_stack([x - x[head], y - y[head]])
        xy[:, 0] += self.head_x_m(t_s)
        return s, xy

    def points_xy_m(self, s_m: np.ndarray, t_s: float) -> np.ndarray:
        """Raceway points ``(..., 2)`` (m) of body positions ``s_m`` from the head."""
        grid, xy = self.centreline_m(t_s)
        s = np.asarray(s_m, dtype=float)
        return np.stack(
            [np.interp(s, grid, xy[:, 0]), np.interp(s, grid, xy[:, 1])], axis=-1
        )


def body_positions_m(model: WormModel, sample) -> np.ndarray:
    """Each segment boundary's distance along the body from the head (m).

    ``(n_segments + 1,)`` for one sample, ``(n, n_segments + 1)`` for several:
    the ground truth a tracker's positions along the body are measured against.
    """
    return model.segment_boundaries_m(sample) - model.geometry.head_on_raceway_m


def boundaries_xy_m(model: WormModel, sample) -> np.ndarray:
    """Where each segment boundary lies on the raceway (m): ``(..., n + 1, 2)``."""
    posture = Posture(model)
    samples = np.atleast_1d(np.asarray(sample))
    along = np.atleast_2d(body_positions_m(model, samples))
    out = np.stack(
        [
            posture.points_xy_m(along[i], float(samples[i]) / model.fs_hz)
            for i in range(samples.size)
        ]
    )
    return out[0] if np.ndim(sample) == 0 else out


def body_layers(
    posture: Posture,
    along_m: np.ndarray,
    t_s: float,
    optics: CameraOptics,
    body_diameter_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The bent body as two undistorted images ``(height, width)``: its coverage
    (alpha, 0–1, soft one-pixel edge) and its shaded brightness.

    The same look as the straight drawing in ``camera.render_worm_frame``
    (darker boundaries, tapered ends, rounded shading), but in body coordinates:
    for each pixel near the body, ``s`` (arc length from the head) and ``d``
    (signed distance across), by projecting the pixel on the centre-line.
    """
    scale = optics.px_per_mm * 1000.0  # px per metre
    h, w = optics.height_px, optics.width_px
    grid_s, grid_xy = posture.centreline_m(t_s)
    uv = optics.raceway_to_undistorted_px(grid_xy[:, 0], grid_xy[:, 1])
    theta = posture.heading_rad(grid_s, t_s)
    line = np.column_stack([uv, np.cos(theta), np.sin(theta)])  # point, tangent
    r_max = 0.5 * body_diameter_m * scale
    # |θ| ≤ 1 rad: u grows along the body, so each column meets the centre-line
    # once, and every pixel within r of it lies within r/cos θ + a margin.
    reach = int(np.ceil(r_max / np.cos(posture.amplitude_rad) + 3))
    lo = max(int(np.floor(uv[:, 0].min())), 0)
    hi = min(int(np.ceil(uv[:, 0].max())), w - 1)
    cols = np.arange(lo, hi + 1, dtype=float)
    centre_v = np.interp(cols, uv[:, 0], uv[:, 1])
    offsets = np.arange(-reach, reach + 1)
    rows = np.rint(centre_v)[:, None] + offsets[None, :]
    cols2 = np.broadcast_to(cols[:, None], rows.shape)
    keep = (rows >= 0) & (rows < h)
    pu, pv = cols2[keep], rows[keep]
    # Project each pixel on the centre-line: start at its column's body point,
    # then slide along the tangent (Newton on |p − c(s)|²; curvature radius
    # ≥ 12 mm against a 4 mm body radius, so it converges in a few steps).
    s = np.interp(pu, uv[:, 0], grid_s)
    first, step = grid_s[0], grid_s[1] - grid_s[0]
    for _ in range(3):
        cu, cv, tu, tv = _at(s, first, step, line)
        s = s + ((pu - cu) * tu + (pv - cv) * tv) / scale
        s = np.clip(s, grid_s[0], grid_s[-1])
    cu, cv, tu, tv = _at(s, first, step, line)
    d = tu * (pv - cv) - tv * (pu - cu)  # across the body, px
    # The body runs from its first boundary to its last (shorter when the
    # muscle has contracted), tapering over an eighth of its length at each end.
    bounds = np.asarray(along_m, dtype=float)
    head, tail = bounds[0], bounds[-1]
    frac = np.clip((s - head) / (tail - head), 0.0, 1.0)
    taper = np.clip(np.minimum(frac, 1.0 - frac) * 8.0, 0.0, 1.0) ** 0.5
    # The flat ends cover the pixels they cut partly (as a real sensor's pixel
    # integrates), so a tip that moves by a fraction of a pixel shows it.
    cover = np.clip(np.minimum(s - head, tail - s) * scale + 0.5, 0.0, 1.0)
    inside = cover > 0
    radius = np.where(inside, r_max * (0.35 + 0.65 * taper), 0.0)
    j = np.searchsorted(bounds, s).clip(1, bounds.size - 1)
    dist_px = scale * np.minimum(np.abs(s - bounds[j - 1]), np.abs(s - bounds[j]))
    body = 175.0 - 70.0 * np.exp(-((dist_px / 1.3) ** 2)) - 20.0 * (1.0 - taper)
    shading = np.clip(1.0 - 0.35 * (d / np.maximum(radius, 1.0)) ** 2, 0.4, 1.0)
    alpha = np.zeros((h, w))
    shaded = np.zeros((h, w))
    iu, iv = pu.astype(np.intp), pv.astype(np.intp)
    alpha[iv, iu] = np.clip(radius - np.abs(d) + 0.5, 0.0, 1.0) * cover
    shaded[iv, iu] = body * shading
    return alpha, shaded


def _at(s, first, step, line):
    """Centre-line point (px) and tangent at arc lengths ``s`` (m), linearly
    interpolated between the 20 µm grid points of ``line`` (u, v, tu, tv)."""
    x = (s - first) / step
    i = np.clip(x.astype(np.intp), 0, line.shape[0] - 2)
    f = (x - i)[:, None]
    at = line[i] + f * (line[i + 1] - line[i])
    return at[:, 0], at[:, 1], at[:, 2], at[:, 3]
