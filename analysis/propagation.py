"""Per-stimulus AP propagation: volleys, latency per pair, conduction velocity.

For one stimulus-locked epoch (µV, ``(n_samples, n_channels)``) that starts
tens of milliseconds before the stimulus (the quiet part gives the hum and the
noise), in the order that works:

1. hum: 50/60 Hz and harmonics fitted before the stimulus, removed (hum.py);
2. artifact: its true start and length found in the data, fitted robustly and
   subtracted; clipped samples blanked (artifact.py);
3. zero-phase band-pass 300 Hz–5 kHz of what is left — after the artifact is
   gone, so the filter cannot smear it over the spikes;
4. noise: MAD of the filtered quiet part before the stimulus, per channel;
5. volleys: lines ``latency = t0 + x / v`` through ≥ 3 pairs' spike envelopes,
   found jointly, timed to a fraction of a sample (volleys.py);
6. names: of two volleys the faster is the medial giant fibre (MGF ≈ 30 m/s,
   LGF ≈ 15 m/s); a lone volley is medial if faster than
   ``mgf_min_velocity_m_per_s``. Across a recording, ``analysis.fibres``
   re-names volleys from the velocities of all sweeps.

Latencies are measured from the pulse's start as found in the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import isfinite

import numpy as np

from analysis._artifact_kernels import mad_columns
from analysis._volley_kernels import count_columns, widen_rows
from analysis.artifact import ONSET_SEARCH_S, PulseMemory, subtract_artifact
from analysis.filters import bandpass_sos, filtfilt
from analysis.hum import remove_hum
from analysis.volleys import Line, find_volleys
from analysis.volleys import fit_velocity as fit_velocity  # re-exported

VELOCITY_RANGE_M_PER_S = (3.0, 60.0)
T0_RANGE_S = (-0.5e-3, 5e-3)
SPIKE_SPAN_S = 2e-3  # a multiphasic spike's whole extent
PRE_S = 0.05  # quiet signal before each stimulus: hum and noise are fitted on it
PRE_MIN_S = 0.002  # when a recording starts just before a stimulus: no hum fit


def search_window_s(positions_m: np.ndarray, *, v_min_m_per_s: float = 3.0) -> float:
    """Time after the stimulus to the last possible arrival at the farthest pair."""
    far = float(np.max(np.abs(np.asarray(positions_m, dtype=float))))
    return 1e-3 + T0_RANGE_S[1] + far / v_min_m_per_s + SPIKE_SPAN_S


@dataclass(frozen=True, slots=True)
class Volley:
    """One action potential travelling along the worm (one giant fibre)."""

    fibre: str  # "mgf" or "lgf"
    latency_s: np.ndarray  # per channel, from the pulse's start; NaN where absent
    amplitude_uv: np.ndarray  # peak-to-peak per channel; NaN where absent
    conduction_velocity_m_per_s: float
    velocity_se_m_per_s: float
    snr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residual_s: float = float("nan")
    # False when fewer than min_pairs arrivals were clear of the artifact's
    # remains, clipping or another spike: the velocity may be pulled, and it
    # is left out of the recording's fibre statistics.
    clean: bool = True
    fitted: np.ndarray | None = None  # pairs the velocity was fitted on

    @property
    def n_pairs(self) -> int:
        """Pairs the velocity was fitted on."""
        if self.fitted is None:
            return int(np.isfinite(self.latency_s).sum())
        return int(self.fitted.sum())


@dataclass(frozen=True, slots=True)
class Quality:
    """How much the data support one stimulus's result."""

    noise_uv: np.ndarray  # per channel, after filtering
    blanked_s: np.ndarray  # per channel: clipped time, never searched
    pulse_duration_s: float  # found in the data
    onset_shift_s: float  # pulse start found − onset given
    ringing_hz: float  # NaN: none found
    mains_hz: float  # NaN: too little signal before the stimulus to fit hum
    polarity: np.ndarray  # per channel: +1/−1 against the strongest, 0 unknown

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "noise_uv": _clean(self.noise_uv),
            "blanked_ms": _clean(self.blanked_s * 1e3),
            "pulse_duration_s": _num(self.pulse_duration_s),
            "onset_shift_s": _num(self.onset_shift_s),
            "ringing_hz": _num(self.ringing_hz),
            "mains_hz": _num(self.mains_hz),
            "polarity": [int(p) for p in self.polarity.tolist()],
        }


@dataclass(frozen=True, slots=True)
class StimulusResponse:
    """What one stimulus evoked."""

    onset_sample: int
    responded: bool
    latency_s: np.ndarray  # first volley (MGF if present), per channel
    amplitude_uv: np.ndarray
    conduction_velocity_m_per_s: float
    velocity_se_m_per_s: float
    volleys: tuple[Volley, ...] = field(default=())
    noise_uv: np.ndarray | None = None
    quality: Quality | None = None
    # Volleys whose timing was not clean, set aside across a recording
    # (analysis.fibres): shown, never counted.
    suspect_volleys: tuple[Volley, ...] = field(default=())
    # The epoch as the detector saw it (hum and artifact out, band-passed, µV;
    # clipped samples NaN), when asked for (``keep_cleaned``): what a live view
    # draws is what was analysed. Never in ``to_dict``.
    cleaned_uv: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""
        v = self.conduction_velocity_m_per_s
        return {
            "onset_sample": int(self.onset_sample),
            "responded": bool(self.responded),
            "latency_s": _clean(self.latency_s),
            "amplitude_uv": _clean(self.amplitude_uv),
            "conduction_velocity_m_per_s": float(v) if np.isfinite(v) else None,
            "volleys": [volley_dict(vo) for vo in self.volleys],
            "suspect_volleys": [volley_dict(vo) for vo in self.suspect_volleys],
            "quality": None if self.quality is None else self.quality.to_dict(),
        }


def volley_dict(vo: Volley) -> dict:
    """One volley as JSON."""
    return {
        "fibre": vo.fibre,
        "latency_s": _clean(vo.latency_s),
        "amplitude_uv": _clean(vo.amplitude_uv),
        "conduction_velocity_m_per_s": float(vo.conduction_velocity_m_per_s),
        "velocity_se_m_per_s": _num(vo.velocity_se_m_per_s),
        "n_pairs": vo.n_pairs,
        "pairs_fitted": None
        if vo.fitted is None
        else np.flatnonzero(vo.fitted).tolist(),
        "snr": _clean(vo.snr),
        "residual_s": _num(vo.residual_s),
        "clean": vo.clean,
    }


def _clean(values) -> list[float | None]:
    # Python floats tested by math.isfinite: np.isfinite costs ~1 µs a scalar
    floats = map(float, np.atleast_1d(values).tolist())
    return [v if isfinite(v) else None for v in floats]


def _num(value) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if isfinite(v) else None


def fibre_names(
    velocities_m_per_s: list[float], mgf_min_velocity_m_per_s: float = 20.0
) -> list[str]:
    """Names for volleys sorted fastest first: of two or more the first is the
    MGF, the rest LGF; a lone volley is the MGF if at least
    ``mgf_min_velocity_m_per_s``.

    >>> fibre_names([30.0, 15.0]), fibre_names([15.0]), fibre_names([25.0])
    (['mgf', 'lgf'], ['lgf'], ['mgf'])
    """
    if len(velocities_m_per_s) >= 2:
        return ["mgf"] + ["lgf"] * (len(velocities_m_per_s) - 1)
    if velocities_m_per_s:
        fast = velocities_m_per_s[0] >= mgf_min_velocity_m_per_s
        return ["mgf" if fast else "lgf"]
    return []


def name_volleys(
    lines: list[Line], mgf_min_velocity_m_per_s: float = 20.0
) -> list[Volley]:
    """Volleys named by speed: of two the faster is the MGF; one by its speed."""
    lines = sorted(lines, key=lambda v: -v.velocity_m_per_s)
    names = fibre_names([v.velocity_m_per_s for v in lines], mgf_min_velocity_m_per_s)
    return [
        Volley(
            name, v.latency_s, v.amplitude_uv, v.velocity_m_per_s,
            v.velocity_se_m_per_s, v.snr, v.residual_s, v.clean, v.fitted,
        )
        for name, v in zip(names, lines, strict=True)
    ]  # fmt: skip


def analyse_stimulus(
    epoch_uv: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    duration_s: float | None,
    positions_m: np.ndarray,
    clip_uv: float | np.ndarray | None = None,
    mains_hz: float | None = None,
    noise_uv: np.ndarray | None = None,
    threshold_sd: float = 4.0,
    min_pairs: int = 3,
    velocity_range_m_per_s: tuple[float, float] = VELOCITY_RANGE_M_PER_S,
    mgf_min_velocity_m_per_s: float = 20.0,
    pulse_memory: PulseMemory | None = None,
    onset_search_s: float = ONSET_SEARCH_S,
    keep_cleaned: bool = False,
) -> StimulusResponse:
    """Analyse one epoch whose stimulus is said to start at row ``onset``.

    ``duration_s``: the pulse's given length (None if unknown: it is found in
    the data either way). ``positions_m``: each pair's distance from the
    stimulation site. ``clip_uv``: the ADC's rail in µV, if known (otherwise
    clipping is recognised by repeated extreme codes). ``noise_uv`` overrides
    the noise measured before the stimulus (needed when there is less than
    5 ms of signal before it). ``pulse_memory``: the stimuli's true pulse
    lengths learnt so far (``artifact.PulseMemory``); once a length is
    settled, a trial only finds its pulse's start (a third of the cost).
    ``onset_search_s``: how far the pulse may start from ``onset`` (0.1 ms for
    a board's sample number; ``artifact.MARKER_ONSET_SEARCH_S`` for markers
    rounded to a millisecond's fraction). ``keep_cleaned``: keep the epoch as
    the detector saw it in ``StimulusResponse.cleaned_uv``.
    """
    x = np.asarray(epoch_uv, dtype=np.float64)
    n_ch = x.shape[1]
    positions = np.asarray(positions_m, dtype=float)
    guard = round(1e-3 * fs_hz)  # a rounded marker may be up to ±0.7 ms off
    quiet = max(0, onset - guard)
    dehummed, hum = remove_hum(x, fs_hz=fs_hz, quiet_until=quiet, mains_hz=mains_hz)
    lines, art, noise, filtered = _pass(
        dehummed, None, fs_hz=fs_hz, onset=onset, duration_s=duration_s,
        positions=positions, clip_uv=clip_uv, noise_uv=noise_uv, quiet=quiet,
        threshold_sd=threshold_sd, min_pairs=min_pairs,
        velocity_range_m_per_s=velocity_range_m_per_s, memory=pulse_memory,
        onset_search_s=onset_search_s,
    )  # fmt: skip
    if not art.learnt:
        # Second pass: the artifact refitted without the spikes just found
        # (a spike riding on the pulse pulls a plain fit of its length), and
        # the given pulse length held to the stricter test that only a
        # spike-free fit allows (artifact.settle_pulse). Only this pass's
        # length teaches the pulse memory.
        spikes = _spike_mask(lines, x.shape, onset + art.onset_shift_s * fs_hz, fs_hz)
        lines, art, noise, filtered = _pass(
            dehummed, spikes, fs_hz=fs_hz, onset=onset, duration_s=duration_s,
            positions=positions, clip_uv=clip_uv, noise_uv=noise_uv, quiet=quiet,
            threshold_sd=threshold_sd, min_pairs=min_pairs,
            velocity_range_m_per_s=velocity_range_m_per_s,
            onset_search_s=onset_search_s,
        )  # fmt: skip
    if pulse_memory is not None and not art.learnt:
        pulse_memory.add(duration_s, art.pulse_duration_s)
    volleys = name_volleys(lines, mgf_min_velocity_m_per_s)
    polarity = lines[0].polarity if lines else np.zeros(n_ch)
    quality = Quality(
        noise_uv=noise,
        blanked_s=_blanked_s(art.blanked, fs_hz),
        pulse_duration_s=art.pulse_duration_s,
        onset_shift_s=art.onset_shift_s,
        ringing_hz=art.ringing_hz,
        mains_hz=hum.mains_hz,
        polarity=polarity,
    )
    cleaned = None
    if keep_cleaned:
        cleaned = filtered.astype(np.float32)
        cleaned[art.blanked] = np.nan
    return StimulusResponse(
        onset_sample=onset,
        **first_volley_fields(volleys, n_ch),
        volleys=tuple(volleys),
        noise_uv=noise,
        quality=quality,
        cleaned_uv=cleaned,
    )


def first_volley_fields(volleys, n_channels: int) -> dict:
    """A response's headline fields: its first volley's (the MGF if present)."""
    first = volleys[0] if volleys else None
    nan = np.full(n_channels, np.nan)
    return {
        "responded": first is not None,
        "latency_s": first.latency_s if first else nan,
        "amplitude_uv": first.amplitude_uv if first else nan,
        "conduction_velocity_m_per_s": first.conduction_velocity_m_per_s
        if first
        else np.nan,
        "velocity_se_m_per_s": first.velocity_se_m_per_s if first else np.nan,
    }


def _spike_mask(
    lines: list[Line], shape: tuple[int, int], zero_row: float, fs_hz: float
) -> np.ndarray:
    """Samples within ±0.75 ms of every arrival of every volley."""
    mask = np.zeros(shape, dtype=bool)
    half = round(0.75e-3 * fs_hz)
    for line in lines:
        for c in np.flatnonzero(np.isfinite(line.latency_s)):
            r = round(zero_row + line.latency_s[c] * fs_hz)
            mask[max(0, r - half) : r + half + 1, c] = True
    return mask


def _pass(
    dehummed: np.ndarray,
    spikes: np.ndarray | None,
    *,
    fs_hz: float,
    onset: int,
    duration_s: float | None,
    positions: np.ndarray,
    clip_uv,
    noise_uv,
    quiet: int,
    threshold_sd: float,
    min_pairs: int,
    velocity_range_m_per_s: tuple[float, float],
    memory: PulseMemory | None = None,
    onset_search_s: float = ONSET_SEARCH_S,
):
    """Artifact out, band-pass, noise, volleys: one pass over the epoch."""
    n = dehummed.shape[0]
    clean, art = subtract_artifact(
        dehummed, fs_hz=fs_hz, onset=onset, duration_s=duration_s, clip_uv=clip_uv,
        spikes=spikes, memory=memory, onset_search_s=onset_search_s,
    )  # fmt: skip
    sos = bandpass_sos(fs_hz)
    filtered = filtfilt(clean, sos)
    # What was taken out, as the band-pass sees it (after the onset only).
    artifact = np.zeros_like(clean)
    first = max(0, onset - round(2e-3 * fs_hz))
    artifact[first:] = filtfilt(dehummed[first:] - clean[first:], sos)
    # The filter spreads a blanked span's edges: never search next to one.
    spread = round(0.3e-3 * fs_hz)
    blanked = np.empty_like(art.blanked)
    widen_rows(art.blanked, spread, blanked)
    zero_row = onset + art.onset_shift_s * fs_hz
    edge = round(2e-3 * fs_hz)  # the filter's start-up at the epoch's edge
    if noise_uv is not None:
        noise = np.maximum(np.asarray(noise_uv, dtype=float), 1e-9)
    elif quiet - edge >= round(5e-3 * fs_hz):
        # every other sample: the same noise to a percent, half the sorting
        noise = _mad(filtered[edge:quiet:2], blanked[edge:quiet:2])
    else:
        noise = _mad(filtered[onset:], blanked[onset:])
    search = (
        int(zero_row + T0_RANGE_S[0] * fs_hz),
        min(n - spread, int(zero_row + search_window_s(positions) * fs_hz) + 1),
    )
    lines = find_volleys(
        filtered,
        noise=noise,
        blanked=blanked,
        fs_hz=fs_hz,
        zero_row=zero_row,
        positions_m=positions,
        search_rows=search,
        velocity_range_m_per_s=velocity_range_m_per_s,
        t0_range_s=T0_RANGE_S,
        threshold_sd=threshold_sd,
        min_pairs=min_pairs,
        artifact=artifact,
        edge_rows=(zero_row, zero_row + art.pulse_duration_s * fs_hz),
    )
    return lines, art, noise, filtered


def _blanked_s(blanked: np.ndarray, fs_hz: float) -> np.ndarray:
    """``ArtifactFit.blanked_s``: blanked time per channel, s (the count per
    column in a Numba kernel: numpy's bool sum costs ~50 µs an epoch)."""
    counts = np.empty(blanked.shape[1], dtype=np.int64)
    count_columns(blanked, counts)
    return counts / fs_hz


def _mad(filtered: np.ndarray, blanked: np.ndarray) -> np.ndarray:
    """Noise SD per channel (1.4826 × MAD) over samples that are not blanked
    (inf where 8 or fewer are); one Numba kernel, exactly ``np.median``'s
    values (counted selections: neither a partition nor a sort)."""
    out = np.empty(filtered.shape[1])
    mad_columns(filtered, blanked, out)
    return np.maximum(out, 1e-9)
