"""A recording's summary over its analysed stimuli: each channel's median latency,
median amplitude and response probability; the recruitment curve at each pulse
duration; rheobase and chronaxie (Weiss and Lapicque) fitted to the trials; the
worm's habituation. The fits themselves are in ``analysis.fits``.

Pure functions over arrays, one row per analysed stimulus (a stimulus whose epoch
was lost is not a row), returning frozen dataclasses. NaN marks a value that does
not exist; ``to_dict()`` gives the JSON of ``neurorig analyze`` (docs/analysis.md),
with ``None`` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from analysis.fits import (
    SD_MODELS,
    Habituation,
    RecruitmentFit,
    StrengthDurationFit,
    fit_habituation,
    fit_recruitment,
    fit_strength_duration_trials,
    habituation_load,
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


def fit_rows(
    amplitudes_vpp: ArrayLike,
    durations_s: ArrayLike,
    responded: ArrayLike,
    onsets_s: ArrayLike | None,
    pulse_index: ArrayLike | None,
    delivered_vpp: ArrayLike | None,
) -> dict[str, np.ndarray]:
    """The stimuli the fits use, as arrays: first pulses (a train's later
    pulses meet a refractory, facilitated fibre) with an amplitude and a
    duration; the amplitude delivered where the board measured it. One rule
    for one recording's fits (``summarise``) and a batch's pooled ones
    (``rig.offline.batch``), so the two never count trials differently.

    >>> r = fit_rows([3.0, 3.0, 4.0], [2e-3, 2e-3, 2e-3], [True, True, False],
    ...              None, [0, 1, 0], [3.1, float("nan"), float("nan")])
    >>> r["amplitude_vpp"].tolist(), r["responded"].tolist()
    ([3.1, 4.0], [True, False])
    """
    a = np.asarray(amplitudes_vpp, dtype=float)
    d = np.asarray(durations_s, dtype=float)
    y = np.asarray(responded, dtype=bool)
    n = a.shape[0] if a.ndim == 1 else -1
    t = np.arange(n, dtype=float) if onsets_s is None else np.asarray(onsets_s, float)
    k = np.zeros(n, int) if pulse_index is None else np.asarray(pulse_index, int)
    v = (
        np.full(n, np.nan)
        if delivered_vpp is None
        else np.asarray(delivered_vpp, float)
    )
    if (
        a.ndim != 1
        or not d.shape == y.shape == t.shape == k.shape == v.shape == a.shape
    ):
        raise ValueError(
            "amplitudes_vpp, durations_s, responded (and onsets_s, pulse_index, "
            f"delivered_vpp) must be (n_stimuli,); got {a.shape}, {d.shape}, {y.shape}"
            f", {t.shape}, {k.shape}, {v.shape}"
        )
    if onsets_s is not None and (not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0)):
        raise ValueError("onsets_s must be finite and in the order delivered")
    # Every pulse habituates the worm, trains' later pulses too.
    load = habituation_load(t) if onsets_s is not None else None
    amplitude = np.where(np.isfinite(v) & (v > 0), v, a)
    keep = (
        (k == 0) & np.isfinite(amplitude) & (amplitude > 0) & np.isfinite(d) & (d > 0)
    )
    return {
        "amplitude_vpp": amplitude[keep],
        "duration_s": d[keep],
        "responded": y[keep],
        "onset_s": t[keep],
        "load": None if load is None else load[keep],
        "delivered": np.isfinite(v[keep]) & (v[keep] > 0),
    }


def recruitment_curves(
    amplitudes_vpp: ArrayLike,
    durations_s: ArrayLike,
    responded: ArrayLike,
    *,
    link: str = "logit",
) -> tuple[RecruitmentFit, ...]:
    """One maximum-likelihood recruitment fit per pulse duration, shortest
    first (``analysis.fits.fit_recruitment``): determined, with its 95 %
    intervals, or the interval the threshold lies in and why not.

    Stimuli with no amplitude or duration (NaN: a WAV's marker without a map)
    are left out; durations are grouped to the microsecond.
    """
    a = np.asarray(amplitudes_vpp, dtype=float)
    d = np.asarray(durations_s, dtype=float)
    y = np.asarray(responded, dtype=bool)
    if not a.shape == d.shape == y.shape or a.ndim != 1:
        raise ValueError(
            "amplitudes_vpp, durations_s and responded must be (n_stimuli,); "
            f"got {a.shape}, {d.shape}, {y.shape}"
        )
    keep = np.isfinite(a) & (a > 0) & np.isfinite(d) & (d > 0)
    a, d, y = a[keep], d[keep], y[keep]
    # Python's round (correctly rounded), not np.round (scaled): 0.0033 stays 0.0033.
    keys = np.array([round(float(v), DURATION_DECIMALS) for v in d])
    return tuple(
        fit_recruitment(a[keys == dur], y[keys == dur], duration_s=dur, link=link)
        for dur in sorted(set(keys.tolist()))
    )


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """The per-channel, recruitment, strength–duration and habituation parts
    of a recording's results."""

    channels: tuple[ChannelSummary, ...]
    recruitment: tuple[RecruitmentFit, ...]
    strength_duration: dict[str, StrengthDurationFit]  # by model: weiss, lapicque
    habituation: Habituation | None  # None: no stimulus times, or nothing fitted
    amplitude_source: str  # "delivered" (stimulus monitor) or "commanded"

    def to_dict(self) -> dict[str, Any]:
        """The JSON's ``channels``, ``recruitment``, ``strength_duration`` and
        ``habituation``."""
        return {
            "channels": [c.to_dict() for c in self.channels],
            "recruitment": [c.to_dict() for c in self.recruitment],
            "strength_duration": {
                name: fit.to_dict() for name, fit in self.strength_duration.items()
            },
            "habituation": None
            if self.habituation is None
            else self.habituation.to_dict(),
            "fit_amplitudes": self.amplitude_source,
        }


def summarise(
    *,
    latency_s: ArrayLike,
    amplitude_uv: ArrayLike,
    responded: ArrayLike,
    amplitudes_vpp: ArrayLike,
    durations_s: ArrayLike,
    positions_m: ArrayLike,
    onsets_s: ArrayLike | None = None,
    pulse_index: ArrayLike | None = None,
    delivered_vpp: ArrayLike | None = None,
    evoked: ArrayLike | None = None,
) -> RecordingSummary:
    """``channel_summaries``, the recruitment curves, both strength–duration
    laws fitted to the trials and the habituation, over the analysed stimuli
    (one row each, in the order delivered).

    ``onsets_s`` (each stimulus's time) lets the fits measure habituation and
    refer rheobase and chronaxie to the rested worm; ``pulse_index`` (a
    train's pulses 0, 1, …) keeps the fits to first pulses; ``delivered_vpp``
    (the stimulus monitor's measure, NaN where none) is fitted in place of
    the commanded amplitude wherever it exists. ``evoked``: whether the
    stimulus evoked an AP, for the fits (default ``responded``): a volley whose
    timing was not clean still shows that the fibre fired.
    """
    rows = fit_rows(
        amplitudes_vpp,
        durations_s,
        responded if evoked is None else evoked,
        onsets_s,
        pulse_index,
        delivered_vpp,
    )
    a, d, y = rows["amplitude_vpp"], rows["duration_s"], rows["responded"]
    sd: dict[str, StrengthDurationFit] = {}
    habituation = None
    if a.size:
        for model in SD_MODELS:
            sd[model] = fit_strength_duration_trials(
                a, d, y, load=rows["load"], model=model
            )
        if rows["load"] is not None:
            habituation = fit_habituation(a, y, rows["onset_s"], d, load=rows["load"])
    return RecordingSummary(
        channels=channel_summaries(
            latency_s, amplitude_uv, responded, positions_m=positions_m
        ),
        recruitment=recruitment_curves(a, d, y),
        strength_duration=sd,
        habituation=habituation,
        amplitude_source="delivered"
        if a.size and rows["delivered"].all()
        else "commanded"
        if not rows["delivered"].any()
        else "delivered where measured, else commanded",
    )
