"""A recording's summary over its analysed stimuli: each channel's median latency,
median amplitude and response probability; the recruitment curve at each pulse
duration; the strength–duration fit across the durations.

Pure functions over arrays, one row per analysed stimulus (a stimulus whose epoch
was lost is not a row), returning frozen dataclasses. NaN marks a value that does
not exist; ``to_dict()`` gives the JSON of ``neurorig analyze`` (docs/analysis.md),
with ``None`` there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from analysis.param_maps import (
    StrengthDurationFit,
    fit_recruitment,
    fit_strength_duration,
)

# Pulse durations equal to the microsecond are one duration (a recording's
# durations are the protocol's milliseconds, converted).
DURATION_DECIMALS = 6


def _or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    """One recording pair over the analysed stimuli."""

    index: int
    position_mm: float
    latency_s_median: float  # over stimuli that responded here; NaN: none did
    amplitude_uv_median: float
    response_probability: float  # responded here / analysed; NaN: none analysed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return {
            "index": self.index,
            "position_mm": self.position_mm,
            "latency_s_median": _or_none(self.latency_s_median),
            "amplitude_uv_median": _or_none(self.amplitude_uv_median),
            "response_probability": _or_none(self.response_probability),
        }


def channel_summaries(
    latency_s: ArrayLike,
    amplitude_uv: ArrayLike,
    responded: ArrayLike,
    *,
    positions_m: ArrayLike,
) -> tuple[ChannelSummary, ...]:
    """Each channel's median latency and amplitude over the stimuli that evoked a
    response, and how often a response reached it.

    ``latency_s`` and ``amplitude_uv``: ``(n_stimuli, n_channels)``, NaN where
    the response did not reach a channel; ``responded``: ``(n_stimuli,)``;
    ``positions_m``: the pair centres (one per channel, at least).

    >>> lat = [[1e-3, 2e-3], [3e-3, np.nan], [9e-3, 9e-3]]
    >>> amp = [[100.0, 50.0], [300.0, np.nan], [900.0, 900.0]]
    >>> a, b = channel_summaries(lat, amp, [True, True, False], positions_m=[0.04, 0.06])
    >>> a.latency_s_median, a.amplitude_uv_median, round(a.response_probability, 3)
    (0.002, 200.0, 0.667)
    >>> b.to_dict()
    {'index': 1, 'position_mm': 60.0, 'latency_s_median': 0.002, 'amplitude_uv_median': 50.0, 'response_probability': 0.3333333333333333}
    """  # noqa: E501
    lat = np.asarray(latency_s, dtype=float)
    amp = np.asarray(amplitude_uv, dtype=float)
    hit = np.asarray(responded, dtype=bool)
    positions = np.asarray(positions_m, dtype=float)
    if lat.ndim != 2 or amp.shape != lat.shape or hit.shape != lat.shape[:1]:
        raise ValueError(
            "latency_s and amplitude_uv must be (n_stimuli, n_channels) and "
            f"responded (n_stimuli,); got {lat.shape}, {amp.shape}, {hit.shape}"
        )
    n_stimuli, n_channels = lat.shape
    out = []
    for ch in range(n_channels):
        latencies = lat[hit, ch][np.isfinite(lat[hit, ch])]
        amplitudes = amp[hit, ch][np.isfinite(amp[hit, ch])]
        out.append(
            ChannelSummary(
                index=ch,
                position_mm=float(positions[ch] * 1000),
                latency_s_median=_median(latencies),
                amplitude_uv_median=_median(amplitudes),
                response_probability=latencies.size / n_stimuli
                if n_stimuli
                else float("nan"),
            )
        )
    return tuple(out)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


@dataclass(frozen=True, slots=True)
class RecruitmentCurve:
    """The logistic recruitment fit at one pulse duration:
    P(response) = 1 / (1 + exp(−(V − threshold)/slope))."""

    duration_s: float
    threshold_vpp: float  # 50 % response
    slope_vpp: float
    n: int  # stimuli fitted

    def probability(self, amplitude_vpp: ArrayLike) -> np.ndarray:
        """Fitted response probability at ``amplitude_vpp``."""
        v = np.asarray(amplitude_vpp, dtype=float)
        return np.asarray(expit((v - self.threshold_vpp) / self.slope_vpp))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "duration_s": self.duration_s,
            "threshold_vpp": self.threshold_vpp,
            "slope_vpp": self.slope_vpp,
            "n": self.n,
        }


def recruitment_curves(
    amplitudes_vpp: ArrayLike, durations_s: ArrayLike, responded: ArrayLike
) -> tuple[RecruitmentCurve, ...]:
    """One maximum-likelihood logistic fit per pulse duration, shortest first.

    Stimuli with no amplitude or duration (NaN: a WAV's marker without a map)
    are left out; a duration whose stimuli cannot be fitted (fewer than 3, or
    no failures or no responses) has no curve. Durations are grouped to the
    microsecond.
    """
    a = np.asarray(amplitudes_vpp, dtype=float)
    d = np.asarray(durations_s, dtype=float)
    y = np.asarray(responded, dtype=bool)
    if not a.shape == d.shape == y.shape or a.ndim != 1:
        raise ValueError(
            "amplitudes_vpp, durations_s and responded must be (n_stimuli,); "
            f"got {a.shape}, {d.shape}, {y.shape}"
        )
    keep = np.isfinite(a) & np.isfinite(d)
    a, y = a[keep], y[keep]
    # Python's round (correctly rounded), not np.round (scaled): 0.0033 stays 0.0033.
    keys = np.array([round(float(v), DURATION_DECIMALS) for v in d[keep]])
    curves = []
    for duration in sorted(set(keys.tolist())):
        rows = keys == duration
        try:
            fit = fit_recruitment(a[rows], y[rows])
        except ValueError:
            continue
        curves.append(
            RecruitmentCurve(duration, fit.threshold_vpp, fit.slope_vpp, fit.n)
        )
    return tuple(curves)


def strength_duration(
    curves: Sequence[RecruitmentCurve],
) -> StrengthDurationFit | None:
    """Weiss/Lapicque across the recruitment curves' thresholds; None with fewer
    than two curves (or when the fit is singular)."""
    if len(curves) < 2:
        return None
    try:
        return fit_strength_duration(
            [c.duration_s for c in curves], [c.threshold_vpp for c in curves]
        )
    except ValueError:  # np.linalg.LinAlgError is one
        return None


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """The per-channel, recruitment and strength–duration parts of a recording's
    results."""

    channels: tuple[ChannelSummary, ...]
    recruitment: tuple[RecruitmentCurve, ...]
    strength_duration: StrengthDurationFit | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON's ``channels``, ``recruitment`` and ``strength_duration``."""
        sd = self.strength_duration
        return {
            "channels": [c.to_dict() for c in self.channels],
            "recruitment": [c.to_dict() for c in self.recruitment],
            "strength_duration": None if sd is None else sd.to_dict(),
        }


def summarise(
    *,
    latency_s: ArrayLike,
    amplitude_uv: ArrayLike,
    responded: ArrayLike,
    amplitudes_vpp: ArrayLike,
    durations_s: ArrayLike,
    positions_m: ArrayLike,
) -> RecordingSummary:
    """``channel_summaries``, ``recruitment_curves`` and ``strength_duration``
    over the analysed stimuli (one row each, in the order delivered)."""
    curves = recruitment_curves(amplitudes_vpp, durations_s, responded)
    return RecordingSummary(
        channels=channel_summaries(
            latency_s, amplitude_uv, responded, positions_m=positions_m
        ),
        recruitment=curves,
        strength_duration=strength_duration(curves),
    )
