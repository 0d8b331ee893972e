"""Displacement and strain per body region, and per-stimulus motion measures.

Successive twitches at 1 pulse/s overlap (relaxation ~1.8 s), so a response is
never measured from an absolute baseline: each stimulus's response is the
deviation from the trajectory the region was already on, a straight line fitted
to the ``baseline_s`` before the stimulus and extrapolated through the response
window (the tail of the previous twitch is smooth and, over ~1 s, close to
linear). Contraction onset is the first time the deviation exceeds
``onset_threshold_mm``; the peak is the largest deviation before the next
stimulus (or ``window_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Each electrode pair's body region: its centre ± this, along the body axis.
REGION_HALF_WIDTH_MM = 10.0
# Online, each twitch is read this long after its stimulus: past the peak
# (~0.255 s, PHYSIOLOGY.md) and short enough for a 1 pulse/s loop to wait for it.
ONLINE_TWITCH_WINDOW_S = 0.4


def electrode_regions_mm(
    centres_mm, half_width_mm: float = REGION_HALF_WIDTH_MM
) -> list[tuple[float, float]]:
    """The body region around each recording pair, as (start, end) in mm."""
    return [(float(c) - half_width_mm, float(c) + half_width_mm) for c in centres_mm]


def region_displacement(
    positions_mm: np.ndarray,
    regions_mm: list[tuple[float, float]],
    *,
    rest_frames: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Displacement (mm) and strain of each region over time.

    ``positions_mm``: tracked band positions (n_frames, n_bands). A region is an
    interval of the bands' rest positions (mean of the first ``rest_frames``).
    Displacement: mean band displacement in the region; strain: change of the
    region's length (first to last band) over its rest length (negative =
    contraction). Returns ``(displacement, strain)``, each (n_frames, n_regions).
    """
    pos = np.asarray(positions_mm, dtype=float)
    rest = np.nanmean(pos[:rest_frames], axis=0)
    disp = pos - rest
    n = pos.shape[0]
    displacement = np.full((n, len(regions_mm)), np.nan)
    strain = np.full((n, len(regions_mm)), np.nan)
    for k, (lo, hi) in enumerate(regions_mm):
        inside = np.flatnonzero((rest >= lo) & (rest <= hi))
        if inside.size == 0:
            continue
        displacement[:, k] = np.nanmean(disp[:, inside], axis=1)
        if inside.size >= 2:
            a, b = inside[0], inside[-1]
            strain[:, k] = (pos[:, b] - pos[:, a]) / (rest[b] - rest[a]) - 1.0
    return displacement, strain


@dataclass(frozen=True, slots=True)
class MotionResponse:
    """Motion evoked by one stimulus in one series (region or whole body)."""

    onset_latency_s: float  # NaN when no contraction was seen
    peak_displacement_mm: float  # largest deviation from the extrapolated trend (≥ 0)
    time_to_peak_s: float


def stimulus_motion(
    series_mm: np.ndarray,
    frame_times_s: np.ndarray,
    onsets_s: np.ndarray,
    *,
    baseline_s: float = 0.15,
    window_s: float = 0.9,
    onset_threshold_mm: float = 0.05,
) -> list[MotionResponse]:
    """Per stimulus: contraction onset latency, peak displacement, time to peak."""
    y = np.asarray(series_mm, dtype=float)
    t = np.asarray(frame_times_s, dtype=float)
    onsets = np.asarray(onsets_s, dtype=float)
    out = []
    for k, onset in enumerate(onsets):
        end = min(onset + window_s, onsets[k + 1] if k + 1 < onsets.size else np.inf)
        base = (t >= onset - baseline_s) & (t < onset) & np.isfinite(y)
        resp = (t >= onset) & (t < end) & np.isfinite(y)
        if base.sum() < 2 or not resp.any():
            out.append(MotionResponse(np.nan, np.nan, np.nan))
            continue
        slope, intercept = np.polyfit(t[base], y[base], 1)
        deviation = np.abs(y[resp] - (intercept + slope * t[resp]))
        tr = t[resp]
        i = int(np.argmax(deviation))
        above = np.flatnonzero(deviation > onset_threshold_mm)
        latency = float(tr[above[0]] - onset) if above.size else np.nan
        out.append(MotionResponse(latency, float(deviation[i]), float(tr[i] - onset)))
    return out
