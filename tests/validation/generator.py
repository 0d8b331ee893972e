"""Independent synthetic recordings of earthworm giant-fibre volleys, with ground truth.

This module shares no code and no assumptions with the analysis under test: it is
written from the physiology and from Backyard Brains Spike Recorder's file format
only, with numpy and the standard library.

Model
-----
* A stimulus (one full period of a sine, true duration ``pulse_ms_true``) starts at
  the true onset time ``onset_s`` (continuous, not aligned to samples).
* Each fibre (``mgf`` = medial, fast; ``lgf`` = lateral, slow) fires in a sweep with
  its probability.  When it fires, it is excited at the head (position 0) at
  ``onset + t0 + jitter`` (jitter: Gaussian, SD ``t0_jitter_us``, one value per fibre
  per sweep, shared by all pairs) and reaches body position ``x`` (metres) at
  ``onset + t0 + jitter + x / v``.  A fibre that fires is seen on every pair
  (through-conducted), with a per-pair amplitude.
* Single-ended spike waveform ``s(t)`` (reference time t = 0), built from Gaussian
  lobes whose full width at half maximum is the phase width ``w``:
  ``mono``: one lobe at 0; ``bi``: ``+lobe(t + w/2) - lobe(t - w/2)`` (zero crossing
  at 0); ``tri``: ``-0.35 lobe(t + w) + lobe(t) - 0.5 lobe(t - w)``.
  ``spike_sign`` flips it.  ``w`` grows linearly from the first to the last pair by
  ``dispersion`` (0.5 = +50 %).
* Differential pair centred at ``x`` with electrodes at ``x -/+ gap/2``:
  ``s(t - (x - gap/2)/v) - s(t - (x + gap/2)/v)``; single-ended: ``s(t - x/v)``.
  Either waveform is scaled so that its peak |value| on that pair equals
  ``spike_uv * pair_gain`` (then a small per-sweep amplitude jitter).
  **The true arrival time of a pair is the reference time of the pair's centre,
  t0 + jitter + x/v**: the peak for ``mono`` single-ended, the central zero crossing
  for ``bi`` single-ended, the centre of symmetry of a differential waveform.
* Stimulus artifact on channel k: ``coupling_k * shape(t)`` during the true pulse
  (``sine`` = sin(2 pi t / T), ``phase`` = sin(2 pi t / T + phi_k), ``cosine`` =
  cos(2 pi t / T)), then a step to an exponential tail (``artifact_tail_frac`` of the
  coupling, time constant ``artifact_tail_ms``, random sign per channel) plus optional
  damped ringing.  coupling_k = ``artifact_mv * (x_min / x_k) ** artifact_falloff``
  (largest on the pair nearest the stimulus), random sign except on the nearest pair.
* Noise: white + pink (1/f power, numpy FFT shaping), mains hum with harmonics
  (per-channel amplitude 50-100 % of the stated value, random phase), slow drift.
* ADC: counts = round(total_uv / uv_per_count), always saturated to int16.  With
  ``clip=True`` the range is set to ``clip_fraction * artifact_mv``, so the nearest
  pair rails for a few ms on each stimulus (``uv_per_count`` is then derived).
* Faults: reversed channel (sign of everything on it), dead channel (white + pink
  noise only, or zeros), railed channel (stuck at +32767).

Determinable rule (``Truth.determinable``)
------------------------------------------
A fibre is *determinable* when

1. it fired in at least 30 % of the sweeps (realised count, not probability), and
2. at least 3 pairs are *usable* for it.  A pair is usable when
   (a) it is not the dead or the railed channel,
   (b) its SNR >= 5, where SNR = peak |amplitude| of the fibre's isolated spike
       waveform on that pair after a 300-5000 Hz zero-phase band-pass, divided by
       the RMS of that channel's white + pink noise after the same band-pass (hum and
       drift excluded: a notch and the band-pass remove them).  The band-pass is
       applied with numpy FFT as |H|^2 of a 2nd-order Butterworth high-pass at 300 Hz
       and low-pass at 5000 Hz (what filtfilt would give), and
   (c) in at least half of the sweeps in which the fibre fired, the spike is clear:
       the whole spike (from where its waveform first exceeds 5 % of its peak) starts
       after the end of the true stimulus pulse, and no sample in the spike's window
       is at the int16 rails.

(c) is a refinement of "SNR >= 5 on >= 3 pairs": a spike that arrives during the
pulse or while the amplifier is railed is not observable.  The rule is deliberately
conservative: a correct value reported for a non-determinable fibre still scores
"ok" in ``scoring.score``.

Naming: ``mgf`` is always the faster fibre (25-35 m/s), ``lgf`` the slower
(10-17 m/s), in the truth as in the expected analysis output.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIBRES = ("mgf", "lgf")
INT16_MIN = -32768
INT16_MAX = 32767
BANDPASS_HZ = (300.0, 5000.0)
SNR_THRESHOLD = 5.0
MIN_USABLE_PAIRS = 3
MIN_FIRE_FRACTION = 0.30
EVENTS_HEADER = ("# Marker IDs can be arbitrary strings.", "# Marker ID,\tTime (in s)")

_LN2x4 = 4.0 * math.log(2.0)


# --------------------------------------------------------------------------- #
# Condition
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Condition:
    """Every knob of a synthetic recording.  Units are in the names.

    Channel indices (``reversed_channel`` etc.) index ``positions_mm``, which is also
    the channel order in the file.
    """

    # geometry / acquisition
    fs_hz: float = 20000.0
    positions_mm: tuple[float, ...] = (35.0, 58.0, 80.0, 105.0, 122.0, 140.0)
    pair_gap_mm: float = 6.0  # electrode spacing within a differential pair
    recording: str = "differential"  # or "single_ended" (pair_gap_mm ignored)
    uv_per_count: float = 0.5  # ignored (derived) when clip=True
    # fibres
    mgf_velocity_m_per_s: float | None = 30.0
    lgf_velocity_m_per_s: float | None = None  # None = absent
    mgf_probability: float = 1.0
    lgf_probability: float = 1.0
    mgf_spike_uv: float = 200.0  # nominal peak |amplitude| on a pair (gain 1)
    lgf_spike_uv: float = 150.0
    mgf_t0_ms: float = 0.5  # utilisation delay from pulse onset
    lgf_t0_ms: float = 0.8
    t0_jitter_us: float = 30.0  # SD, per sweep and fibre, same for all pairs
    velocity_sweep_sd_frac: float = 0.0  # per-sweep velocity scatter (SD, fraction)
    mgf_pair_gain: tuple[float, ...] | None = None  # explicit per-pair gains
    lgf_pair_gain: tuple[float, ...] | None = None
    pair_gain_jitter: float = 0.2  # gains 1 +/- U(jitter) when not explicit
    spike_amp_jitter: float = 0.05  # per-sweep amplitude scatter (SD, fraction)
    shape: str = "bi"  # single-ended waveform: "mono", "bi", "tri"
    spike_sign: int = 1
    width_ms: float = 0.3  # phase width (FWHM of each lobe) at the first pair
    dispersion: float = 0.0  # fractional width growth from first to last pair
    # noise
    white_noise_uv: float = 20.0  # RMS
    pink_noise_uv: float = 15.0  # RMS (1/f power from 0.5 Hz)
    hum_hz: float = 50.0
    hum_uv: float = 50.0  # peak amplitude of the fundamental (max over channels)
    hum_harmonics_uv: tuple[float, ...] = ()  # 2nd, 3rd, ... harmonic amplitudes
    drift_uv: float = 100.0  # max |drift|
    drift_kind: str = "sines"  # "sines" (0.05-0.5 Hz) or "walk" (random walk)
    # stimulus and artifact
    pulse_ms_true: float = 2.0
    pulse_ms_given: float | None = 2.0  # what the user tells the analysis
    mixed_pulses: tuple[tuple[str, float], ...] | None = None  # ((id, true ms), ...)
    stimulus_marker_id: str = "1"
    artifact_mv: float = 1.5  # amplitude on the nearest pair
    artifact_falloff: float = 1.5  # coupling ~ (x_min / x) ** falloff
    artifact_shape: str = "sine"  # "sine", "phase" (random phase), "cosine"
    artifact_jitter: float = 0.02  # per-sweep amplitude scatter (SD, fraction)
    artifact_tail_ms: float = 2.0
    artifact_tail_frac: float = 0.3
    ringing_khz: float | None = None
    ringing_decay_ms: float = 1.0
    ringing_frac: float = 0.3
    clip: bool = False
    clip_fraction: float = 0.4  # ADC full scale as a fraction of artifact_mv
    # channel faults
    reversed_channel: int | None = None
    reversed_largest: bool = False  # the reversed channel also has the largest spikes
    dead_channel: int | None = None
    dead_mode: str = "noise"  # "noise" (white+pink only) or "zeros"
    railed_channel: int | None = None
    # protocol and markers
    n_stimuli: int = 30
    interval_s: float = 0.25
    interval_jitter_s: float = 0.01
    lead_s: float = 0.2
    marker_decimals: int = 4
    extra_markers: tuple[tuple[str, int], ...] = ()  # ((id, count), ...) random times
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.positions_mm)
        if n < 1:
            raise ValueError("need at least one pair")
        if self.shape not in ("mono", "bi", "tri"):
            raise ValueError(f"shape {self.shape!r}")
        if self.recording not in ("differential", "single_ended"):
            raise ValueError(f"recording {self.recording!r}")
        if self.artifact_shape not in ("sine", "phase", "cosine"):
            raise ValueError(f"artifact_shape {self.artifact_shape!r}")
        if self.dead_mode not in ("noise", "zeros"):
            raise ValueError(f"dead_mode {self.dead_mode!r}")
        if self.drift_kind not in ("sines", "walk"):
            raise ValueError(f"drift_kind {self.drift_kind!r}")
        if self.marker_decimals not in (3, 4):
            raise ValueError("marker_decimals must be 3 or 4")
        faults = [
            ch
            for ch in (self.reversed_channel, self.dead_channel, self.railed_channel)
            if ch is not None
        ]
        if any(not 0 <= ch < n for ch in faults) or len(set(faults)) != len(faults):
            raise ValueError("fault channels must be distinct and in range")
        for gains in (self.mgf_pair_gain, self.lgf_pair_gain):
            if gains is not None and len(gains) != n:
                raise ValueError("pair gains must have one value per pair")
        if (
            self.mgf_velocity_m_per_s is not None
            and self.lgf_velocity_m_per_s is not None
            and self.lgf_velocity_m_per_s >= self.mgf_velocity_m_per_s
        ):
            raise ValueError("mgf must be the faster fibre")
        if self.interval_jitter_s >= self.interval_s / 4:
            raise ValueError("interval jitter too large")


def fibre_params(c: Condition, fibre: str) -> dict:
    """The per-fibre knobs of a condition, by fibre name."""
    return {
        "velocity": getattr(c, f"{fibre}_velocity_m_per_s"),
        "probability": getattr(c, f"{fibre}_probability"),
        "spike_uv": getattr(c, f"{fibre}_spike_uv"),
        "t0_ms": getattr(c, f"{fibre}_t0_ms"),
        "pair_gain": getattr(c, f"{fibre}_pair_gain"),
    }


# --------------------------------------------------------------------------- #
# Case and truth
# --------------------------------------------------------------------------- #
@dataclass
class StimulusTruth:
    index: int
    marker_id: str
    onset_s: float  # true onset, unrounded
    marker_time_s: float  # as written in the events file
    pulse_ms_true: float
    pulse_ms_given: float | None
    fired: dict[str, bool]
    fire_time_s: dict[str, float | None]  # excitation at position 0 (onset+t0+jitter)
    velocity_m_per_s: dict[str, float | None]
    arrival_s: dict[str, tuple[float, ...] | None]  # absolute time, per pair centre


@dataclass
class FibreTruth:
    name: str
    velocity_m_per_s: float  # median over the sweeps in which it fired
    t0_ms: float
    probability: float
    n_fired: int
    fire_fraction: float
    amplitude_uv_per_pair: tuple[float, ...]  # nominal raw peak |amplitude|
    width_ms_per_pair: tuple[float, ...]
    snr_per_pair: tuple[float, ...]  # 0 on dead / railed channels; inf if no noise
    clear_fraction_per_pair: tuple[float, ...]  # see rule (c) in the module doc
    usable_pairs: tuple[bool, ...]
    determinable: bool


@dataclass
class Truth:
    stimuli: list[StimulusTruth]
    fibres: dict[str, FibreTruth]  # present fibres only
    velocity_m_per_s: dict[str, float | None]  # both names; None = fibre absent
    snr_per_pair: dict[str, tuple[float, ...] | None]
    determinable: dict[str, bool]  # both names; absent fibre -> False
    noise_rms_bp_uv: tuple[float, ...]  # per channel, white+pink after band-pass
    bad_channels: tuple[int, ...]  # dead and railed
    railed_fraction: tuple[float, ...]  # per channel, fraction of samples at rails


@dataclass
class Case:
    condition: Condition
    seed: int
    samples_counts: np.ndarray  # int16, (n_samples, n_channels)
    fs_hz: float
    uv_per_count: float
    positions_mm: tuple[float, ...]
    pair_gap_mm: float
    recording: str
    markers: list[tuple[str, float]]  # every events-file line, in time order
    stimulus_marker_ids: tuple[str, ...]
    pulse_ms_given: float | None  # single-duration protocols; None if mixed/not given
    pulse_ms_given_by_id: dict[str, float | None]
    truth: Truth

    @property
    def n_channels(self) -> int:
        return self.samples_counts.shape[1]

    @property
    def duration_s(self) -> float:
        return self.samples_counts.shape[0] / self.fs_hz

    @property
    def samples_uv(self) -> np.ndarray:
        return self.samples_counts.astype(np.float64) * self.uv_per_count

    @property
    def stimulus_markers(self) -> list[tuple[str, float]]:
        return [m for m in self.markers if m[0] in self.stimulus_marker_ids]


# --------------------------------------------------------------------------- #
# Waveforms and filters
# --------------------------------------------------------------------------- #
def _lobe(t: np.ndarray, w: float) -> np.ndarray:
    return np.exp(-_LN2x4 * (t / w) ** 2)


def single_ended_shape(t: np.ndarray, w: float, shape: str) -> np.ndarray:
    """Unnormalised single-ended spike s(t), reference time 0, phase width w (s)."""
    if shape == "mono":
        return _lobe(t, w)
    if shape == "bi":
        return _lobe(t + w / 2, w) - _lobe(t - w / 2, w)
    return -0.35 * _lobe(t + w, w) + _lobe(t, w) - 0.5 * _lobe(t - w, w)


class _PairWave:
    """Unit-peak waveform of one fibre on one pair, as a function of t - arrival."""

    def __init__(self, w_s: float, shape: str, sign: int, delay_s: float | None):
        self.w, self.shape, self.sign = w_s, shape, sign
        self.d = delay_s  # electrode-to-electrode delay; None = single-ended
        half = (0.0 if delay_s is None else delay_s / 2) + 4.0 * w_s
        step = min(w_s / 400.0, 1e-6)
        tau = np.arange(-half, half + step / 2, step)
        raw = self._raw(tau)
        peak = float(np.max(np.abs(raw)))
        self.norm = peak
        above = np.nonzero(np.abs(raw) > 0.05 * peak)[0]
        self.lead_s = float(-tau[above[0]])  # how early the spike starts
        self.trail_s = float(tau[above[-1]])
        self.half_window_s = half

    def _raw(self, tau: np.ndarray) -> np.ndarray:
        if self.d is None:
            return single_ended_shape(tau, self.w, self.shape)
        return single_ended_shape(
            tau + self.d / 2, self.w, self.shape
        ) - single_ended_shape(tau - self.d / 2, self.w, self.shape)

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        return self.sign * self._raw(tau) / self.norm


def bandpass_gain(freqs_hz: np.ndarray, band_hz: tuple[float, float] = BANDPASS_HZ):
    """Zero-phase band-pass magnitude: |H|^2 of 2nd-order Butterworth HP and LP."""
    lo, hi = band_hz
    f = np.asarray(freqs_hz, dtype=np.float64)
    hp = np.zeros_like(f)
    pos = f > 0
    hp[pos] = 1.0 / (1.0 + (lo / f[pos]) ** 4)
    lp = 1.0 / (1.0 + (f / hi) ** 4)
    return hp * lp


def bandpass(x: np.ndarray, fs_hz: float, band_hz=BANDPASS_HZ) -> np.ndarray:
    """Zero-phase FFT band-pass along axis 0."""
    n = x.shape[0]
    spec = np.fft.rfft(x, axis=0)
    g = bandpass_gain(np.fft.rfftfreq(n, 1.0 / fs_hz), band_hz)
    if x.ndim > 1:
        g = g[:, None]
    return np.fft.irfft(spec * g, n=n, axis=0)


def _pink(rng: np.random.Generator, n: int, fs: float, rms: float) -> np.ndarray:
    if rms <= 0:
        return np.zeros(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shaping = 1.0 / np.sqrt(np.maximum(f, 0.5))
    shaping[0] = 0.0
    x = np.fft.irfft(spec * shaping, n=n)
    return x * (rms / np.sqrt(np.mean(x**2)))


def _drift(
    rng: np.random.Generator, t: np.ndarray, amp: float, kind: str
) -> np.ndarray:
    freqs = rng.uniform(0.05, 0.5, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    weights = rng.uniform(0.3, 1.0, 3)
    walk = np.cumsum(rng.standard_normal(t.size))
    if amp <= 0:
        return np.zeros_like(t)
    if kind == "sines":
        x = sum(
            w * np.sin(2 * np.pi * f * t + p) for w, f, p in zip(weights, freqs, phases)
        )
    else:
        x = walk - np.linspace(walk[0], walk[-1], walk.size)
    return x * (amp / np.max(np.abs(x)))


# --------------------------------------------------------------------------- #
# Generator
# --------------------------------------------------------------------------- #
def _round_time(t: float, decimals: int) -> float:
    return float(f"{t:.{decimals}f}")


def make_case(condition: Condition, seed: int = 0) -> Case:
    """Synthesise one recording and its truth.  Deterministic in (condition, seed).

    Random streams are separate per component, so toggling one knob (e.g. a
    reversed channel) leaves the other components' randomness unchanged.
    """
    c = condition
    streams = np.random.SeedSequence(seed).spawn(8)
    r_time, r_fire, r_gain, r_noise, r_hum, r_drift, r_art, r_mark = (
        np.random.default_rng(s) for s in streams
    )
    fs = float(c.fs_hz)
    n_stim = int(c.n_stimuli)
    x_m = np.asarray(c.positions_mm, dtype=np.float64) / 1000.0
    n_ch = x_m.size
    gap_m = c.pair_gap_mm / 1000.0
    differential = c.recording == "differential"

    # ---- timing -----------------------------------------------------------
    onsets = (
        c.lead_s
        + np.arange(n_stim) * c.interval_s
        + r_time.uniform(-c.interval_jitter_s, c.interval_jitter_s, n_stim)
    )
    if c.mixed_pulses:
        pattern = np.resize(np.arange(len(c.mixed_pulses)), n_stim)
        choice = r_time.permutation(pattern)
        stim_ids = [c.mixed_pulses[j][0] for j in choice]
        pulse_ms = np.array([c.mixed_pulses[j][1] for j in choice], dtype=np.float64)
        given_by_id = {
            pid: (None if c.pulse_ms_given is None else float(ms))
            for pid, ms in c.mixed_pulses
        }
        pulse_given_single = None
    else:
        r_time.permutation(np.arange(1))  # keep stream use independent of the option
        stim_ids = [c.stimulus_marker_id] * n_stim
        pulse_ms = np.full(n_stim, float(c.pulse_ms_true))
        given_by_id = {c.stimulus_marker_id: c.pulse_ms_given}
        pulse_given_single = c.pulse_ms_given
    duration_s = c.lead_s + n_stim * c.interval_s + 0.05
    n_samp = math.ceil(duration_s * fs)
    t = np.arange(n_samp) / fs

    # ---- fibres -----------------------------------------------------------
    if n_ch > 1:
        rel = (x_m - x_m.min()) / (x_m.max() - x_m.min())
    else:
        rel = np.zeros(1)
    widths_s = c.width_ms / 1000.0 * (1.0 + c.dispersion * rel)

    fired: dict[str, np.ndarray] = {}
    t0_jit: dict[str, np.ndarray] = {}
    v_sweep: dict[str, np.ndarray] = {}
    amp_jit: dict[str, np.ndarray] = {}
    gains: dict[str, np.ndarray] = {}
    for f in FIBRES:  # draw for both fibres always (stream independence)
        p = fibre_params(c, f)
        u = r_fire.random(n_stim)
        fired[f] = (u < p["probability"]) & (p["velocity"] is not None)
        t0_jit[f] = r_fire.standard_normal(n_stim) * c.t0_jitter_us * 1e-6
        vs = r_fire.standard_normal(n_stim) * c.velocity_sweep_sd_frac
        v_sweep[f] = (p["velocity"] or 1.0) * (1.0 + vs)
        amp_jit[f] = 1.0 + c.spike_amp_jitter * r_fire.standard_normal((n_stim, n_ch))
        g = 1.0 + r_gain.uniform(-c.pair_gain_jitter, c.pair_gain_jitter, n_ch)
        if p["pair_gain"] is not None:
            g = np.asarray(p["pair_gain"], dtype=np.float64)
        g = g.copy()
        if c.reversed_largest and c.reversed_channel is not None and n_ch > 1:
            others = np.delete(g, c.reversed_channel)
            g[c.reversed_channel] = 1.5 * float(np.max(others))
        gains[f] = g

    present = [f for f in FIBRES if fibre_params(c, f)["velocity"] is not None]
    waves: dict[str, list[_PairWave]] = {}
    for f in present:
        v = fibre_params(c, f)["velocity"]
        waves[f] = [
            _PairWave(
                widths_s[k], c.shape, c.spike_sign, gap_m / v if differential else None
            )
            for k in range(n_ch)
        ]

    spikes = np.zeros((n_samp, n_ch))
    arrivals: dict[str, np.ndarray] = {}
    for f in present:
        p = fibre_params(c, f)
        fire_t = onsets + p["t0_ms"] / 1000.0 + t0_jit[f]
        arr = fire_t[:, None] + x_m[None, :] / v_sweep[f][:, None]
        arrivals[f] = arr
        for i in np.nonzero(fired[f])[0]:
            for k in range(n_ch):
                wv = waves[f][k]
                i0 = max(0, math.ceil((arr[i, k] - wv.half_window_s) * fs))
                i1 = min(n_samp, math.floor((arr[i, k] + wv.half_window_s) * fs) + 1)
                amp = p["spike_uv"] * gains[f][k] * amp_jit[f][i, k]
                spikes[i0:i1, k] += amp * wv(t[i0:i1] - arr[i, k])

    # ---- artifact ---------------------------------------------------------
    nearest = int(np.argmin(x_m))
    coupling = c.artifact_mv * 1000.0 * (x_m.min() / x_m) ** c.artifact_falloff
    art_sign = r_art.choice([-1.0, 1.0], n_ch)
    art_sign[nearest] = 1.0
    phase = r_art.uniform(-np.pi / 3, np.pi / 3, n_ch)
    tail_sign = r_art.choice([-1.0, 1.0], n_ch)
    art_jit = 1.0 + c.artifact_jitter * r_art.standard_normal((n_stim, n_ch))
    ring_phase = r_art.uniform(0, 2 * np.pi, n_ch)
    artifact = np.zeros((n_samp, n_ch))
    if c.artifact_mv > 0:
        tail_s = c.artifact_tail_ms / 1000.0
        ring_s = c.ringing_decay_ms / 1000.0
        for i in range(n_stim):
            T = pulse_ms[i] / 1000.0
            after = 8 * max(tail_s, ring_s if c.ringing_khz else 0.0)
            end = min(T + after, 0.8 * c.interval_s)
            i0 = math.ceil(onsets[i] * fs)
            i1 = min(n_samp, math.floor((onsets[i] + end) * fs) + 1)
            tau = t[i0:i1] - onsets[i]
            during = tau < T
            for k in range(n_ch):
                y = np.zeros_like(tau)
                arg = 2 * np.pi * tau[during] / T
                if c.artifact_shape == "sine":
                    y[during] = np.sin(arg)
                elif c.artifact_shape == "phase":
                    y[during] = np.sin(arg + phase[k])
                else:
                    y[during] = np.cos(arg)
                ta = tau[~during] - T
                y[~during] = c.artifact_tail_frac * tail_sign[k] * np.exp(-ta / tail_s)
                if c.ringing_khz:
                    y[~during] += (
                        c.ringing_frac
                        * np.exp(-ta / ring_s)
                        * np.sin(
                            2 * np.pi * c.ringing_khz * 1000.0 * ta + ring_phase[k]
                        )
                    )
                artifact[i0:i1, k] += coupling[k] * art_sign[k] * art_jit[i, k] * y

    # ---- noise, hum, drift ------------------------------------------------
    white = r_noise.standard_normal((n_samp, n_ch)) * c.white_noise_uv
    pink = np.column_stack(
        [_pink(r_noise, n_samp, fs, c.pink_noise_uv) for _ in range(n_ch)]
    )
    noise = white + pink
    hum = np.zeros((n_samp, n_ch))
    amps = (c.hum_uv, *c.hum_harmonics_uv)
    for k in range(n_ch):
        scale = r_hum.uniform(0.5, 1.0)
        for h, a in enumerate(amps, start=1):
            ph = r_hum.uniform(0, 2 * np.pi)
            if a > 0:
                hum[:, k] += scale * a * np.sin(2 * np.pi * h * c.hum_hz * t + ph)
    drift = np.column_stack(
        [_drift(r_drift, t, c.drift_uv, c.drift_kind) for _ in range(n_ch)]
    )

    # ---- ADC --------------------------------------------------------------
    if c.clip and c.artifact_mv > 0:
        uv_per_count = c.clip_fraction * c.artifact_mv * 1000.0 / INT16_MAX
    else:
        uv_per_count = float(c.uv_per_count)
    total = spikes + artifact + hum + drift + noise
    if c.reversed_channel is not None:
        total[:, c.reversed_channel] *= -1.0
    if c.dead_channel is not None:
        total[:, c.dead_channel] = (
            noise[:, c.dead_channel] if c.dead_mode == "noise" else 0.0
        )
    counts = np.clip(np.rint(total / uv_per_count), INT16_MIN, INT16_MAX).astype(
        np.int16
    )
    if c.railed_channel is not None:
        counts[:, c.railed_channel] = INT16_MAX
    at_rail = (counts == INT16_MAX) | (counts == INT16_MIN)

    # ---- truth: SNR, clear sweeps, determinable ----------------------------
    bad = tuple(ch for ch in (c.dead_channel, c.railed_channel) if ch is not None)
    noise_bp_rms = np.sqrt(np.mean(bandpass(noise, fs) ** 2, axis=0))
    n_win = 1 << math.ceil(math.log2(0.05 * fs))
    tw = (np.arange(n_win) - n_win // 2) / fs
    fibres_truth: dict[str, FibreTruth] = {}
    for f in present:
        p = fibre_params(c, f)
        amp_pair = p["spike_uv"] * gains[f]
        snr = np.zeros(n_ch)
        clear_frac = np.zeros(n_ch)
        idx_fired = np.nonzero(fired[f])[0]
        for k in range(n_ch):
            wv = waves[f][k]
            if k in bad:
                continue
            peak = float(np.max(np.abs(bandpass(amp_pair[k] * wv(tw), fs))))
            snr[k] = peak / noise_bp_rms[k] if noise_bp_rms[k] > 0 else math.inf
            n_clear = 0
            for i in idx_fired:
                start_rel = arrivals[f][i, k] - wv.lead_s - onsets[i]
                if start_rel < pulse_ms[i] / 1000.0:
                    continue
                j0 = max(0, math.floor((arrivals[f][i, k] - wv.lead_s) * fs))
                j1 = min(n_samp, math.ceil((arrivals[f][i, k] + wv.trail_s) * fs) + 1)
                if not at_rail[j0:j1, k].any():
                    n_clear += 1
            clear_frac[k] = n_clear / idx_fired.size if idx_fired.size else 0.0
        usable = (snr >= SNR_THRESHOLD) & (clear_frac >= 0.5)
        usable[list(bad)] = False
        n_fired = int(idx_fired.size)
        fire_fraction = n_fired / n_stim if n_stim else 0.0
        v_true = (
            float(np.median(v_sweep[f][idx_fired])) if n_fired else float(p["velocity"])
        )
        fibres_truth[f] = FibreTruth(
            name=f,
            velocity_m_per_s=v_true,
            t0_ms=float(p["t0_ms"]),
            probability=float(p["probability"]),
            n_fired=n_fired,
            fire_fraction=fire_fraction,
            amplitude_uv_per_pair=tuple(float(a) for a in amp_pair),
            width_ms_per_pair=tuple(float(w * 1000.0) for w in widths_s),
            snr_per_pair=tuple(float(s) for s in snr),
            clear_fraction_per_pair=tuple(float(q) for q in clear_frac),
            usable_pairs=tuple(bool(u) for u in usable),
            determinable=bool(
                fire_fraction >= MIN_FIRE_FRACTION
                and int(usable.sum()) >= MIN_USABLE_PAIRS
            ),
        )

    # ---- markers ----------------------------------------------------------
    stim_markers = [
        (stim_ids[i], _round_time(float(onsets[i]), c.marker_decimals))
        for i in range(n_stim)
    ]
    extra: list[tuple[str, float]] = []
    for mid, count in c.extra_markers:
        for tt in np.sort(r_mark.uniform(0.02, duration_s - 0.02, int(count))):
            extra.append((mid, _round_time(float(tt), c.marker_decimals)))
    markers = sorted(stim_markers + extra, key=lambda m: m[1])  # stable: stimuli first

    stimuli = []
    for i in range(n_stim):
        fired_i = {f: bool(fired[f][i]) for f in FIBRES}
        stimuli.append(
            StimulusTruth(
                index=i,
                marker_id=stim_ids[i],
                onset_s=float(onsets[i]),
                marker_time_s=stim_markers[i][1],
                pulse_ms_true=float(pulse_ms[i]),
                pulse_ms_given=given_by_id[stim_ids[i]],
                fired=fired_i,
                fire_time_s={
                    f: (
                        float(
                            onsets[i]
                            + fibre_params(c, f)["t0_ms"] / 1000.0
                            + t0_jit[f][i]
                        )
                        if fired_i[f]
                        else None
                    )
                    for f in FIBRES
                },
                velocity_m_per_s={
                    f: float(v_sweep[f][i]) if fired_i[f] else None for f in FIBRES
                },
                arrival_s={
                    f: tuple(float(a) for a in arrivals[f][i]) if fired_i[f] else None
                    for f in FIBRES
                },
            )
        )

    truth = Truth(
        stimuli=stimuli,
        fibres=fibres_truth,
        velocity_m_per_s={
            f: (fibres_truth[f].velocity_m_per_s if f in fibres_truth else None)
            for f in FIBRES
        },
        snr_per_pair={
            f: (fibres_truth[f].snr_per_pair if f in fibres_truth else None)
            for f in FIBRES
        },
        determinable={
            f: (fibres_truth[f].determinable if f in fibres_truth else False)
            for f in FIBRES
        },
        noise_rms_bp_uv=tuple(float(r) for r in noise_bp_rms),
        bad_channels=bad,
        railed_fraction=tuple(float(q) for q in at_rail.mean(axis=0)),
    )
    return Case(
        condition=c,
        seed=seed,
        samples_counts=counts,
        fs_hz=fs,
        uv_per_count=uv_per_count,
        positions_mm=tuple(float(p) for p in c.positions_mm),
        pair_gap_mm=float(c.pair_gap_mm),
        recording=c.recording,
        markers=markers,
        stimulus_marker_ids=tuple(dict.fromkeys(stim_ids)),
        pulse_ms_given=pulse_given_single,
        pulse_ms_given_by_id=given_by_id,
        truth=truth,
    )


# --------------------------------------------------------------------------- #
# Spike Recorder files
# --------------------------------------------------------------------------- #
def events_path_for(wav_path: str | Path) -> Path:
    """Spike Recorder's events file next to NAME.wav: NAME-events.txt."""
    wav_path = Path(wav_path)
    return wav_path.with_name(wav_path.stem + "-events.txt")


def write_spike_recorder(case: Case, wav_path: str | Path) -> tuple[Path, Path]:
    """Write NAME.wav (16-bit PCM LE, one channel per pair) and NAME-events.txt."""
    wav_path = Path(wav_path)
    data = np.ascontiguousarray(case.samples_counts, dtype="<i2")
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(case.n_channels)
        w.setsampwidth(2)
        w.setframerate(round(case.fs_hz))
        w.writeframes(data.tobytes())
    dec = case.condition.marker_decimals
    lines = list(EVENTS_HEADER)
    lines += [f"{mid},\t{tt:.{dec}f}" for mid, tt in case.markers]
    ev = events_path_for(wav_path)
    ev.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return wav_path, ev


def read_spike_recorder_events(path: str | Path) -> list[tuple[str, float]]:
    """Parse an events file (for the generator's own tests): [(id, time_s), ...]."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        mid, tt = line.split(",", 1)
        out.append((mid.strip(), float(tt.strip())))
    return out


# --------------------------------------------------------------------------- #
# Named conditions
# --------------------------------------------------------------------------- #
def _c(description: str, **kw) -> Condition:
    return Condition(description=description, **kw)


_TWO = dict(lgf_velocity_m_per_s=13.0)
_P8 = (30.0, 45.0, 58.0, 80.0, 92.0, 105.0, 125.0, 140.0)

CONDITIONS: dict[str, Condition] = {
    # -- baselines and shapes --
    "baseline_mgf": _c("MGF 30 m/s, bi, differential, 6 pairs, 2 ms sine"),
    "baseline_two_fibres": _c("MGF 30 + LGF 13 m/s, MGF larger", **_TWO),
    "shape_mono_differential": _c(
        "monophasic single-ended shape, differential", shape="mono", **_TWO
    ),
    "shape_tri_differential": _c(
        "triphasic single-ended shape, differential", shape="tri", **_TWO
    ),
    "single_ended_mono": _c(
        "single-ended recording, monophasic",
        recording="single_ended",
        shape="mono",
        **_TWO,
    ),
    "single_ended_bi": _c(
        "single-ended, biphasic, negative-first",
        recording="single_ended",
        shape="bi",
        spike_sign=-1,
        **_TWO,
    ),
    "single_ended_tri": _c(
        "single-ended, triphasic", recording="single_ended", shape="tri", **_TWO
    ),
    "width_0p1ms": _c(
        "narrow phases 0.1 ms at 40 kS/s", width_ms=0.1, fs_hz=40000.0, **_TWO
    ),
    "width_0p5ms": _c("wide phases 0.5 ms", width_ms=0.5, **_TWO),
    "dispersion_50pct": _c(
        "width 0.3 -> 0.45 ms along the body", dispersion=0.5, **_TWO
    ),
    "dispersion_tri_single_ended": _c(
        "tri single-ended, width 0.25 -> 0.375 ms",
        recording="single_ended",
        shape="tri",
        width_ms=0.25,
        dispersion=0.5,
        **_TWO,
    ),
    # -- noise, hum, drift --
    "noise_white_80uv": _c(
        "white 80 uV RMS, large spikes",
        white_noise_uv=80.0,
        pink_noise_uv=10.0,
        mgf_spike_uv=400.0,
        lgf_spike_uv=350.0,
        **_TWO,
    ),
    "noise_pink_100uv": _c(
        "pink 100 uV RMS, large spikes",
        pink_noise_uv=100.0,
        white_noise_uv=15.0,
        mgf_spike_uv=400.0,
        lgf_spike_uv=350.0,
        **_TWO,
    ),
    "noise_low_10uv": _c(
        "white and pink 10 uV, small spikes",
        white_noise_uv=10.0,
        pink_noise_uv=10.0,
        mgf_spike_uv=80.0,
        lgf_spike_uv=60.0,
        **_TWO,
    ),
    "hum_50hz_harmonics": _c(
        "50 Hz hum 200 uV + 2nd-7th harmonics",
        hum_hz=50.0,
        hum_uv=200.0,
        hum_harmonics_uv=(80.0, 60.0, 50.0, 40.0, 35.0, 30.0),
        **_TWO,
    ),
    "hum_60hz_harmonics": _c(
        "60 Hz hum 180 uV + harmonics",
        hum_hz=60.0,
        hum_uv=180.0,
        hum_harmonics_uv=(70.0, 50.0, 40.0, 30.0),
        **_TWO,
    ),
    "drift_walk_500uv": _c(
        "random-walk drift up to 500 uV", drift_uv=500.0, drift_kind="walk", **_TWO
    ),
    "drift_sines_300uv": _c("slow sine drift 300 uV", drift_uv=300.0, **_TWO),
    # -- artifacts --
    "artifact_2ms_tail_0p5": _c(
        "2 ms sine, 0.5 ms tail",
        pulse_ms_true=2.0,
        pulse_ms_given=2.0,
        artifact_tail_ms=0.5,
        **_TWO,
    ),
    "artifact_3ms_tail_2": _c(
        "3 ms sine, 2 ms tail: MGF inside the pulse on the near pairs",
        pulse_ms_true=3.0,
        pulse_ms_given=3.0,
        **_TWO,
    ),
    "artifact_5ms_tail_5": _c(
        "5 ms sine, 5 ms tail, 3 mV",
        pulse_ms_true=5.0,
        pulse_ms_given=5.0,
        artifact_tail_ms=5.0,
        artifact_mv=3.0,
        **_TWO,
    ),
    "artifact_7ms_tail_10": _c(
        "7 ms sine, 10 ms tail: MGF inside the pulse (not determinable), LGF ok",
        pulse_ms_true=7.0,
        pulse_ms_given=7.0,
        artifact_tail_ms=10.0,
        artifact_mv=2.0,
        lgf_velocity_m_per_s=12.0,
    ),
    "artifact_ringing_2khz": _c(
        "ringing 2 kHz, decay 1 ms",
        ringing_khz=2.0,
        ringing_decay_ms=1.0,
        ringing_frac=0.5,
        **_TWO,
    ),
    "artifact_ringing_4khz": _c(
        "ringing 4 kHz, decay 2 ms, 3 mV",
        ringing_khz=4.0,
        ringing_decay_ms=2.0,
        artifact_mv=3.0,
        **_TWO,
    ),
    "artifact_phase_offset": _c(
        "sine with random phase offset per channel",
        artifact_shape="phase",
        artifact_mv=2.5,
        **_TWO,
    ),
    "artifact_cosine": _c(
        "cosine-shaped artifact (steps at both ends)",
        artifact_shape="cosine",
        artifact_mv=2.0,
        **_TWO,
    ),
    "artifact_clipped": _c(
        "3 ms, 4 mV artifact railing the ADC on the nearest pairs",
        clip=True,
        artifact_mv=4.0,
        pulse_ms_true=3.0,
        pulse_ms_given=3.0,
        **_TWO,
    ),
    "artifact_clipped_long_tail": _c(
        "5 mV, rails, 6 ms tail",
        clip=True,
        artifact_mv=5.0,
        artifact_tail_ms=6.0,
        artifact_tail_frac=0.5,
        **_TWO,
    ),
    # -- channel faults --
    "reversed_channel": _c("channel 2 polarity reversed", reversed_channel=2, **_TWO),
    "reversed_and_largest": _c(
        "channel 3 reversed and has the largest spikes",
        reversed_channel=3,
        reversed_largest=True,
        **_TWO,
    ),
    "dead_channel_noise": _c("channel 1 dead (noise only)", dead_channel=1, **_TWO),
    "dead_channel_zeros": _c(
        "channel 4 dead (flat zeros)", dead_channel=4, dead_mode="zeros", **_TWO
    ),
    "railed_channel": _c("channel 5 stuck at full scale", railed_channel=5, **_TWO),
    # -- geometry and sampling --
    "pairs_4": _c("4 irregular pairs", positions_mm=(40.0, 78.0, 95.0, 135.0), **_TWO),
    "pairs_8": _c(
        "8 irregular pairs, 4 mm gap", positions_mm=_P8, pair_gap_mm=4.0, **_TWO
    ),
    "pairs_wide_gap_10mm": _c(
        "10 mm electrode gap",
        pair_gap_mm=10.0,
        positions_mm=(35.0, 62.0, 80.0, 115.0, 140.0),
        **_TWO,
    ),
    "fs_10k": _c("10 kS/s", fs_hz=10000.0, width_ms=0.4, **_TWO),
    "fs_30k": _c("30 kS/s", fs_hz=30000.0, **_TWO),
    "fs_40k": _c("40 kS/s", fs_hz=40000.0, **_TWO),
    # -- fibres --
    "lgf_larger": _c(
        "LGF 250 uV larger than MGF 90 uV",
        mgf_spike_uv=90.0,
        lgf_spike_uv=250.0,
        **_TWO,
    ),
    "mgf_half_sweeps": _c(
        "MGF fires in half the sweeps, LGF always", mgf_probability=0.5, **_TWO
    ),
    "lgf_partial_60pct": _c("LGF in 60 % of sweeps", lgf_probability=0.6, **_TWO),
    "lgf_rare_15pct": _c(
        "LGF in ~15 % of sweeps: LGF not determinable", lgf_probability=0.15, **_TWO
    ),
    "lgf_near_noise_some_pairs": _c(
        "LGF smaller, near the noise on 3 of 6 pairs",
        lgf_spike_uv=110.0,
        lgf_pair_gain=(1.2, 0.2, 1.2, 0.15, 1.1, 0.2),
        **_TWO,
    ),
    "velocities_extreme_35_17": _c(
        "fastest MGF 35, fastest LGF 17",
        mgf_velocity_m_per_s=35.0,
        lgf_velocity_m_per_s=17.0,
    ),
    "velocities_25_10": _c(
        "slowest MGF 25, slowest LGF 10",
        mgf_velocity_m_per_s=25.0,
        lgf_velocity_m_per_s=10.0,
    ),
    "slow_lgf_late_arrival": _c(
        "LGF 10 m/s, t0 1 ms: farthest arrival ~15 ms",
        lgf_velocity_m_per_s=10.0,
        lgf_t0_ms=1.0,
        positions_mm=(40.0, 70.0, 95.0, 120.0, 140.0),
    ),
    "t0_jitter_50us": _c(
        "t0 1.0 ms with 50 us jitter",
        mgf_t0_ms=1.0,
        lgf_t0_ms=1.0,
        t0_jitter_us=50.0,
        **_TWO,
    ),
    "velocity_scatter_1pct": _c(
        "per-sweep velocity scatter 1 % SD", velocity_sweep_sd_frac=0.01, **_TWO
    ),
    # -- markers and pulse duration --
    "markers_3_decimals": _c("markers rounded to 1 ms", marker_decimals=3, **_TWO),
    "pulse_given_2_true_2p1": _c(
        "2 ms given, true 2.1 ms", pulse_ms_true=2.1, pulse_ms_given=2.0, **_TWO
    ),
    "pulse_given_3_true_2": _c(
        "3 ms given, true 2 ms", pulse_ms_true=2.0, pulse_ms_given=3.0, **_TWO
    ),
    "pulse_not_given": _c(
        "no pulse duration given (true 3 ms)",
        pulse_ms_true=3.0,
        pulse_ms_given=None,
        **_TWO,
    ),
    "mixed_durations": _c(
        "IDs '1' = 3 ms and '2' = 5 ms, mixed",
        mixed_pulses=(("1", 3.0), ("2", 5.0)),
        **_TWO,
    ),
    "extra_marker_lines": _c(
        "'_neuron0' and 'threshold' lines mixed in",
        extra_markers=(("_neuron0", 40), ("threshold", 3)),
        **_TWO,
    ),
    # -- combined --
    "kitchen_sink": _c(
        "8 pairs, 30 kS/s, tri, dispersion, pink+hum+drift, ringing, clipping, reversed",
        positions_mm=_P8,
        pair_gap_mm=5.0,
        fs_hz=30000.0,
        shape="tri",
        dispersion=0.3,
        white_noise_uv=30.0,
        pink_noise_uv=40.0,
        hum_uv=150.0,
        hum_harmonics_uv=(60.0, 40.0, 30.0),
        drift_uv=300.0,
        drift_kind="walk",
        ringing_khz=3.0,
        clip=True,
        artifact_mv=4.0,
        reversed_channel=6,
        mgf_spike_uv=250.0,
        lgf_spike_uv=200.0,
        mgf_probability=0.7,
        **_TWO,
    ),
    # -- not determinable --
    "not_determinable_snr1": _c(
        "both fibres at ~1x noise",
        white_noise_uv=60.0,
        mgf_spike_uv=45.0,
        lgf_spike_uv=40.0,
        **_TWO,
    ),
    "not_determinable_snr2": _c(
        "MGF at ~2x noise, alone",
        white_noise_uv=50.0,
        pink_noise_uv=30.0,
        mgf_spike_uv=75.0,
    ),
    "not_determinable_mono_single_ended": _c(
        "single-ended mono at ~1.5x noise",
        recording="single_ended",
        shape="mono",
        white_noise_uv=40.0,
        mgf_spike_uv=45.0,
        lgf_spike_uv=50.0,
        **_TWO,
    ),
}


# --------------------------------------------------------------------------- #
# Random conditions
# --------------------------------------------------------------------------- #
def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_condition(rng: np.random.Generator) -> Condition:
    """A condition with every knob drawn at random within the modelled ranges.

    Noise levels, artifact size and tail are log-uniform, pulse durations favour
    2-3.5 ms (biased towards the easier end) and spike amplitudes are uniform, so
    that a fair share of the fibres is determinable; many draws are still
    legitimately not determinable (check ``case.truth.determinable``).
    """
    n_pairs = int(rng.integers(4, 9))
    first = float(rng.uniform(30.0, 50.0))
    gaps = rng.uniform(10.0, 40.0, n_pairs - 1)
    room = 140.0 - first
    if (
        gaps.sum() > room
    ):  # squeeze the excess above 10 mm so the last pair is <= 140 mm
        excess = gaps - 10.0
        gaps = 10.0 + excess * max(0.0, room - 10.0 * gaps.size) / excess.sum()
    positions = tuple(
        round(float(p), 1) for p in first + np.concatenate(([0.0], np.cumsum(gaps)))
    )
    pair_gap = float(
        rng.uniform(
            3.0, min(10.0, float(np.min(np.diff(positions))) if n_pairs > 1 else 10.0)
        )
    )

    has_lgf = rng.random() < 0.6
    # short pulses more often: a long pulse hides the MGF on every pair
    pulse_true = float(
        rng.uniform(2.0, 3.5) if rng.random() < 0.6 else rng.uniform(3.5, 7.0)
    )
    g = rng.random()
    pulse_given = (
        None
        if g < 0.2
        else (round(pulse_true, 1) if g < 0.6 else float(round(pulse_true)))
    )
    artifact_mv = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
    clip = artifact_mv >= 2.5 and rng.random() < 0.4
    free = list(rng.permutation(n_pairs))
    faults = {}
    for name in ("reversed_channel", "dead_channel", "railed_channel"):
        if rng.random() < 0.15:
            faults[name] = int(free.pop())
    mixed = None
    if rng.random() < 0.1:
        other = float(rng.uniform(2.0, 7.0))
        mixed = (("1", round(pulse_true, 1)), ("2", round(other, 1)))
    extra = ()
    if rng.random() < 0.3:
        extra = (
            ("_neuron0", int(rng.integers(5, 60))),
            ("threshold", int(rng.integers(1, 4))),
        )
    n_h = int(rng.integers(0, 7))
    return Condition(
        fs_hz=float(rng.choice([10000.0, 20000.0, 30000.0, 40000.0])),
        positions_mm=positions,
        pair_gap_mm=round(pair_gap, 1),
        recording="differential" if rng.random() < 0.75 else "single_ended",
        uv_per_count=float(rng.choice([0.25, 0.5, 1.0])),
        mgf_velocity_m_per_s=float(rng.uniform(25.0, 35.0)),
        lgf_velocity_m_per_s=float(rng.uniform(10.0, 17.0)) if has_lgf else None,
        mgf_probability=1.0 if rng.random() < 0.7 else float(rng.uniform(0.2, 1.0)),
        lgf_probability=1.0 if rng.random() < 0.7 else float(rng.uniform(0.2, 1.0)),
        mgf_spike_uv=float(rng.uniform(20.0, 400.0)),
        lgf_spike_uv=float(rng.uniform(20.0, 400.0)),
        mgf_t0_ms=float(rng.uniform(0.3, 1.0)),
        lgf_t0_ms=float(rng.uniform(0.3, 1.0)),
        t0_jitter_us=float(rng.uniform(20.0, 50.0)),
        pair_gain_jitter=float(rng.uniform(0.0, 0.5)),
        shape=str(rng.choice(["mono", "bi", "tri"])),
        spike_sign=int(rng.choice([-1, 1])),
        width_ms=float(rng.uniform(0.1, 0.5)),
        dispersion=0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 0.5)),
        white_noise_uv=_log_uniform(rng, 10.0, 100.0),
        pink_noise_uv=_log_uniform(rng, 10.0, 100.0),
        hum_hz=float(rng.choice([50.0, 60.0])),
        hum_uv=float(rng.uniform(0.0, 200.0)),
        hum_harmonics_uv=tuple(float(a) for a in rng.uniform(0.0, 80.0, n_h)),
        drift_uv=float(rng.uniform(0.0, 500.0)),
        drift_kind=str(rng.choice(["sines", "walk"])),
        pulse_ms_true=pulse_true,
        pulse_ms_given=pulse_given,
        mixed_pulses=mixed,
        artifact_mv=artifact_mv,
        artifact_falloff=float(rng.uniform(1.0, 2.5)),
        artifact_shape=str(rng.choice(["sine", "phase", "cosine"])),
        artifact_tail_ms=float(np.exp(rng.uniform(np.log(0.5), np.log(10.0)))),
        artifact_tail_frac=float(rng.uniform(0.1, 0.6)),
        ringing_khz=None if rng.random() < 0.5 else float(rng.uniform(1.0, 4.0)),
        ringing_decay_ms=float(rng.uniform(0.5, 2.0)),
        clip=bool(clip),
        reversed_largest=bool("reversed_channel" in faults and rng.random() < 0.5),
        dead_mode=str(rng.choice(["noise", "zeros"])),
        n_stimuli=int(rng.integers(20, 41)),
        marker_decimals=int(rng.choice([3, 4])),
        extra_markers=extra,
        description="random",
        **faults,
    )


def describe(case: Case) -> str:
    """One-paragraph human summary of a case's truth (for failure messages)."""
    parts = []
    for f in FIBRES:
        ft = case.truth.fibres.get(f)
        if ft is None:
            parts.append(f"{f}: absent")
            continue
        snr = ", ".join(f"{s:.1f}" for s in ft.snr_per_pair)
        parts.append(
            f"{f}: v={ft.velocity_m_per_s:.2f} m/s fired {ft.n_fired}/{len(case.truth.stimuli)}"
            f" snr=[{snr}] usable={sum(ft.usable_pairs)} determinable={ft.determinable}"
        )
    return "; ".join(parts)


__all__ = [
    "CONDITIONS",
    "FIBRES",
    "Case",
    "Condition",
    "FibreTruth",
    "StimulusTruth",
    "Truth",
    "bandpass",
    "describe",
    "events_path_for",
    "make_case",
    "random_condition",
    "read_spike_recorder_events",
    "write_spike_recorder",
]
