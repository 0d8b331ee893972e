"""The simulated earthworm on the raceway: giant fibres, recording pairs, muscle.

Every parameter is a documented field with its unit and its source (see
docs/simulated-rig.md, "Sources"); where no published figure
exists the field says "assumed" and why. The model is deterministic by seed and
independent of how the stream is chunked: ``render(0, 1000)`` equals
``render(0, 300)`` followed by ``render(300, 700)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

NOISE_PAGE = 4096  # samples per independently seeded noise page
MAX_STIM_ELECTRODES = 16
# The default eight stimulation electrodes, metres from the head: the classic
# pair under the head (4, 12 mm), then one between each pair of recording pins
# and two toward the tail (the pins are at 35–100 mm).
DEFAULT_STIM_ELECTRODES_M: tuple[float, ...] = (
    0.004,
    0.012,
    0.025,
    0.047,
    0.067,
    0.087,
    0.115,
    0.140,
)


@dataclass(frozen=True, slots=True)
class RacewayGeometry:
    """Worm and electrode positions along the body, metres from the head."""

    worm_length_m: float = 0.15  # 110–200 mm (secondary sources)
    n_segments: int = 140  # ~120–170, often 135–150
    head_on_raceway_m: float = 0.010  # where the head lies on the raceway's x axis
    # Stimulation electrodes along the raceway bed, metres from the head,
    # ascending, indexed 0..N−1 from the head (N = 2–16). Electrodes 0 and 1
    # are the classic pair under the head (4 and 12 mm); the others lie between
    # and beyond the recording pins, so that a site in the middle has pairs on
    # both sides and one near the tail has them all in front of it.
    stim_electrodes_m: tuple[float, ...] = DEFAULT_STIM_ELECTRODES_M
    # Differential pairs (a, b); teaching rigs: 1 cm pins, pairs 2–5 cm apart.
    recording_pairs_m: tuple[tuple[float, float], ...] = (
        (0.035, 0.040),
        (0.055, 0.060),
        (0.075, 0.080),
        (0.095, 0.100),
    )

    def __post_init__(self) -> None:
        stim = self.stim_electrodes_m
        if not 2 <= len(stim) <= MAX_STIM_ELECTRODES:
            raise ValueError(
                f"stim_electrodes_m has {len(stim)} electrodes; allowed "
                f"2–{MAX_STIM_ELECTRODES}"
            )
        if any(not 0 <= x <= self.worm_length_m for x in stim) or any(
            b <= a for a, b in itertools.pairwise(stim)
        ):
            raise ValueError(
                f"stim_electrodes_m {[round(x * 1000, 3) for x in stim]} mm: allowed "
                f"ascending positions within the worm (0–{self.worm_length_m * 1000:g} mm)"
            )
        if not 1 <= len(self.recording_pairs_m) <= 32:
            raise ValueError(
                f"recording_pairs_m has {len(self.recording_pairs_m)} pairs; "
                "allowed 1–32"
            )
        for i, (a, b) in enumerate(self.recording_pairs_m):
            for x in (a, b):
                if not 0 <= x <= self.worm_length_m:
                    raise ValueError(
                        f"recording_pairs_m[{i}] electrode at {x * 1000:g} mm is "
                        f"outside the worm (0–{self.worm_length_m * 1000:g} mm)"
                    )

    @property
    def n_channels(self) -> int:
        """One differential channel per recording pair."""
        return len(self.recording_pairs_m)

    @property
    def n_stim_electrodes(self) -> int:
        """Stimulation electrodes along the raceway bed."""
        return len(self.stim_electrodes_m)

    def site_m(self, cathode: int) -> float:
        """The stimulation site of a configuration: its cathode's position."""
        if not 0 <= cathode < self.n_stim_electrodes:
            raise ValueError(
                f"cathode {cathode} is not an electrode; allowed 0–"
                f"{self.n_stim_electrodes - 1}"
            )
        return float(self.stim_electrodes_m[cathode])

    def pair_centres_m(self) -> np.ndarray:
        """Centre of each recording pair along the body, metres."""
        return np.array([(a + b) / 2 for a, b in self.recording_pairs_m])

    @classmethod
    def for_channels(cls, n_channels: int) -> RacewayGeometry:
        """The simulated rig's raceway for ``n_channels`` recording pairs: the
        standard four pins, or pairs spread evenly along the body."""
        return cls() if n_channels == 4 else cls.evenly_spaced(n_channels)

    @classmethod
    def evenly_spaced(
        cls,
        n_channels: int,
        *,
        first_m: float = 0.030,
        last_m: float = 0.140,
        pair_gap_m: float = 0.003,
    ) -> RacewayGeometry:
        """``n_channels`` pairs spread between ``first_m`` and ``last_m``."""
        centres = np.linspace(first_m, last_m, n_channels)
        pairs = tuple(
            (float(c - pair_gap_m / 2), float(c + pair_gap_m / 2)) for c in centres
        )
        return cls(recording_pairs_m=pairs)

    def to_dict(self) -> dict:
        """Plain dict (for recording metadata)."""
        d = asdict(self)
        d["pair_centres_m"] = self.pair_centres_m().tolist()
        return d


@dataclass(frozen=True, slots=True)
class WormParams:
    """Physiology of the simulated worm. Units in the names; sources in comments."""

    # Conduction velocities: MGF mean 30.2 m/s (Bähring & Bauer 2014); LGF
    # 13.3–15.9 m/s, mean 15.0 (Wesleyan teaching-lab data).
    mgf_velocity_m_per_s: float = 30.0
    lgf_velocity_m_per_s: float = 15.0
    # Strength–duration: MGF rheobase 1.01 V, chronaxie 0.06 ms at the fibre
    # (Bähring & Bauer 2014). Expressed here in stimulator Vpp at the raceway
    # electrodes, the coupling through the body folded in (assumed so that the
    # 50 % threshold sits inside the 2–6 Vpp sweep, as classrooms find).
    mgf_rheobase_vpp: float = 2.9
    chronaxie_s: float = 0.06e-3
    # LGF fires at a second, higher inflection (UCSD BIPN145): assumed 1.45×.
    # These thresholds hold for a site under the head (the MGF's field).
    lgf_threshold_ratio: float = 1.45
    # Where along the body the site is (docs/simulated-rig.md, "Where the worm
    # is stimulated"). The MGF takes its input from anterior segments, the LGFs
    # from posterior ones (Rushton 1945; Drewes 1999), their fields overlapping
    # over ~13 segments (0–28) just behind the clitellum (Moore 1979). The
    # anterior field's weight w(x) = 1/(1 + exp((x − end)/s)) falls from 1 at the
    # head to 0 at the tail, its 10–90 % span = the overlap (s = overlap/4.39).
    # Segments 37–50 of 140 in a 150 mm worm: centre 47 mm, overlap 14 mm.
    mgf_field_end_m: float = 0.047
    giant_field_overlap_m: float = 0.014
    # A site outside a fibre's field still reaches the fibre, less readily
    # (assumed): the MGF's threshold at a posterior site is this many times its
    # anterior one; the LGF's, relative to the MGF's anterior threshold, goes
    # from lgf_threshold_ratio at the head to this (< 1: posterior sites
    # recruit the LGF first and alone over a window of amplitudes).
    mgf_posterior_threshold_ratio: float = 1.8
    lgf_posterior_threshold_ratio: float = 0.9
    # Trial-to-trial threshold noise (coefficient of variation), assumed: gives
    # a sigmoidal recruitment curve 50 % at threshold.
    threshold_noise_cv: float = 0.07
    # Stimulus onset to spike initiation (utilisation time), assumed.
    utilisation_s: float = 0.5e-3
    # Absolute refractory period: pairs resolvable down to ~1–3 ms (BIPN145).
    refractory_s: float = 3e-3
    # Habituation at 1 Hz (Backyard Brains; Wesleyan): threshold rises by this
    # fraction per stimulus and recovers with the time constant (assumed).
    habituation_per_stimulus: float = 0.01
    habituation_recovery_s: float = 30.0
    # Extracellular spike amplitude at the surface, ≲ 100 µV (handouts): the
    # peak of the single-ended waveform at one electrode.
    mgf_spike_uv: float = 60.0
    lgf_spike_uv: float = 40.0
    # Single-ended extracellular waveform at one electrode; each channel records
    # electrode a minus electrode b. Near the cord or recorded differentially the
    # spike is biphasic to triphasic, ~0.2–1 ms wide (docs/simulated-rig.md,
    # Sources: BYB, Wesleyan). "biphasic": first derivative of a Gaussian (+ then −; recorded
    # differentially it becomes triphasic). "triphasic": a skewed second
    # derivative (small leading +, main −, trailing +, as 0.3 : 1 : 0.6).
    spike_shape: str = "biphasic"
    # σ of that Gaussian at the initiation site, assumed. Each phase of the
    # single-ended biphasic is 0.24 ms wide at half height (peaks 2σ apart).
    # Recorded by the standard 5 mm pairs, with the dispersion below, the main
    # phase is 0.21–0.23 ms (MGF) and 0.25–0.26 ms (LGF) wide at half height from
    # the first pair to the last, ~1.1–1.3 ms in all. Not wider by default: at
    # σ ≈ 0.18–0.19 ms the differential spike's side phases lie > 0.8 ms apart,
    # and the propagation analysis (0.8 ms detector dead time) splits the spike
    # into two volleys (docs/simulated-rig.md).
    spike_width_s: float = 0.15e-3
    # Temporal dispersion, assumed (docs/simulated-rig.md, Sources: the spike
    # "broadens along the body"; no figure): σ grows by this fraction per metre travelled from
    # the initiation site, σ(x) = spike_width_s·(1 + k·|x − x_stim|): +18 % at
    # the last standard pair (90 mm from the stimulus), +30 % per 150 mm body.
    spike_dispersion_per_m: float = 2.0
    recruitment_gain: float = 0.5  # amplitude grows up to 1.5× above threshold
    # Stimulus artifact at a pair: coupling × exp(−distance / length), plus an
    # exponential tail after the pulse (assumed, sized to swamp near pairs).
    # The board's ADC (±2.5 V after the gain: ±2.5 mV input at gain 1000) rails
    # the nearest pair for coupling ≳ 6e-3 at 6 Vpp (2e-2 rails it from 2 Vpp).
    artifact_coupling: float = 2e-3
    artifact_length_m: float = 0.015
    # Against the common return the current spreads from the cathode alone
    # instead of between two near electrodes: a larger artifact (assumed 1.5×).
    artifact_common_return_factor: float = 1.5
    artifact_tail_fraction: float = 0.2
    artifact_tail_s: float = 1.0e-3
    # A second, slower tail of opposite sign (an AC-coupled amplifier's
    # undershoot as it recovers; electrode polarisation), assumed; as fractions
    # of the pulse's peak at the pair, like the first tail.
    artifact_slow_tail_fraction: float = -0.05
    artifact_slow_tail_s: float = 4.0e-3
    # Ringing after the pulse's end, e^(−t/τ)·sin(2πft), as an amplifier's
    # anti-alias/high-pass filters ring on the pulse's edge; assumed mild. Keep
    # the frequency below fs/2 (5 kHz at the board's lowest 10 kS/s); 0 = off.
    artifact_ringing_hz: float = 3000.0
    artifact_ringing_fraction: float = 0.03
    artifact_ringing_tau_s: float = 0.2e-3
    # Line hum, drift, amplifier noise (input-referred), assumed typical.
    hum_hz: float = 50.0
    hum_uv: float = 8.0
    # Hum harmonics: amplitudes (µV) of the 2nd, 3rd, … harmonics of hum_hz,
    # each with its own phase per channel; assumed modest (rectifier loads make
    # mains hum rich in harmonics). Independent of hum_uv: () = none.
    hum_harmonics_uv: tuple[float, ...] = (3.0, 2.0, 1.0)
    drift_uv: float = 20.0
    noise_uv_rms: float = 4.0
    # Wiring errors per channel (a pair's pins swapped; a channel's gain off),
    # applied to everything recorded on the channel. Off by default: () = all
    # +1 / no error; otherwise one entry per channel.
    channel_polarity: tuple[int, ...] = ()  # each +1 or −1
    channel_gain_error: tuple[float, ...] = ()  # fractional: 0.05 = 5 % high
    # Muscle. Spike → contraction latency in Lumbricus: not found (assumed
    # 30 ms). Twitch peak ~255 ms, relaxation ~1.8 s (Branchiomma proxy).
    electromechanical_delay_s: float = 0.030
    twitch_peak_s: float = 0.255
    twitch_relaxation_s: float = 1.8
    mgf_strain: float = 0.02  # peak segment shortening per MGF volley (assumed)
    lgf_strain: float = 0.012
    # One pulse: small twitch that antifacilitates with repetition (Drewes & Pax).
    antifacilitation: float = 0.15
    antifacilitation_recovery_s: float = 10.0
    # Posture on the raceway (firmware_bridge/sim/posture.py; what the camera
    # films). Off by default: a straight worm along the raceway's x axis, head
    # anchored. Bending: the body axis makes the angle
    # θ(s, t) = bend_amplitude_rad·sin(2π(s/bend_wavelength_m − t/bend_period_s))
    # with the raceway's x axis at s metres from the head: a smooth sinusoidal
    # centre-line whose wave travels slowly down the body (assumed; a worm lying
    # loosely in a raceway takes such shapes, no published figure). Kept below
    # 1 rad so the body never doubles back across the raceway.
    bend_amplitude_rad: float = 0.0
    bend_wavelength_m: float = 0.08
    bend_period_s: float = 10.0
    # Crawling: the whole body drifts along the raceway at this speed, head
    # first (toward −x), turning back after crawl_range_m, and so on (assumed:
    # a slow drift, far below free crawling, as of a worm lying on its
    # electrodes). 0 = anchored.
    crawl_speed_m_per_s: float = 0.0
    crawl_range_m: float = 0.01

    def __post_init__(self) -> None:
        if self.spike_shape not in SPIKE_SHAPES:
            raise ValueError(
                f"spike_shape {self.spike_shape!r} is not one of {SPIKE_SHAPES}"
            )
        if not self.spike_width_s > 0:
            raise ValueError(f"spike_width_s={self.spike_width_s} must be > 0")
        for name in (
            "mgf_field_end_m",
            "giant_field_overlap_m",
            "mgf_posterior_threshold_ratio",
            "lgf_posterior_threshold_ratio",
            "lgf_threshold_ratio",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.spike_dispersion_per_m < 0:
            raise ValueError(
                f"spike_dispersion_per_m={self.spike_dispersion_per_m} must be ≥ 0"
            )
        for name in ("artifact_tail_s", "artifact_slow_tail_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if self.artifact_ringing_hz < 0 or (
            self.artifact_ringing_hz > 0 and not self.artifact_ringing_tau_s > 0
        ):
            raise ValueError(
                f"artifact_ringing_hz={self.artifact_ringing_hz} must be ≥ 0 (0 = "
                f"off) with artifact_ringing_tau_s={self.artifact_ringing_tau_s} > 0"
            )
        if any(v not in (1, -1) for v in self.channel_polarity):
            raise ValueError(
                f"channel_polarity {self.channel_polarity} may hold only +1 and −1"
            )
        if not 0.0 <= self.bend_amplitude_rad <= 1.0:
            raise ValueError(
                f"bend_amplitude_rad={self.bend_amplitude_rad} must be within 0–1 "
                "(0 = straight)"
            )
        for name in ("bend_wavelength_m", "bend_period_s", "crawl_range_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0.0 <= self.crawl_speed_m_per_s <= 0.02:
            raise ValueError(
                f"crawl_speed_m_per_s={self.crawl_speed_m_per_s} must be within "
                "0–0.02 (0 = anchored)"
            )
        if any(not -1 < g for g in self.channel_gain_error):
            raise ValueError(
                f"channel_gain_error {self.channel_gain_error}: each must be > −1"
            )

    def to_dict(self) -> dict:
        """Plain dict (for ground truth and metadata)."""
        return asdict(self)


FIBRES = ("mgf", "lgf")


def anterior_field_weight(params: WormParams, site_m: float | None) -> float:
    """How far a site lies in the MGF's (anterior) sensory field: 1 under the
    head, 0 at the tail, ½ at ``mgf_field_end_m``; None (the classic head
    pair) is 1 exactly."""
    if site_m is None:
        return 1.0
    scale_m = params.giant_field_overlap_m / (2.0 * math.log(9.0))  # 10–90 %
    z = (site_m - params.mgf_field_end_m) / scale_m
    if z > 700:  # exp overflows; the weight is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(z))


def site_threshold_ratio(
    params: WormParams, fibre: str = "mgf", site_m: float | None = None
) -> float:
    """A fibre's threshold at ``site_m`` over the MGF's under the head: the
    log of the ratio moves with the anterior field's weight, from the head's
    (MGF 1, LGF ``lgf_threshold_ratio``) to the tail's
    (``mgf_posterior_threshold_ratio``, ``lgf_posterior_threshold_ratio``)."""
    if fibre not in FIBRES:
        raise ValueError(f"fibre {fibre!r} is not one of {FIBRES}")
    head, tail = (
        (1.0, params.mgf_posterior_threshold_ratio)
        if fibre == "mgf"
        else (params.lgf_threshold_ratio, params.lgf_posterior_threshold_ratio)
    )
    if site_m is None:
        return head
    w = anterior_field_weight(params, site_m)
    return math.exp(w * math.log(head) + (1.0 - w) * math.log(tail))


def threshold_vpp(
    params: WormParams,
    duration_s: float,
    fibre: str = "mgf",
    site_m: float | None = None,
) -> float:
    """Mean 50 % threshold (Weiss/Lapicque): rheobase·(1 + chronaxie/duration),
    times the fibre's ratio at the site (``site_threshold_ratio``; ``site_m``
    None = the classic pair under the head)."""
    base = params.mgf_rheobase_vpp * (1.0 + params.chronaxie_s / duration_s)
    return base * site_threshold_ratio(params, fibre, site_m)


def response_probability(
    params: WormParams,
    amplitude_vpp: float,
    duration_s: float,
    fibre: str = "mgf",
    site_m: float | None = None,
) -> float:
    """Probability that a rested fibre fires: the threshold is Gaussian."""
    mean = threshold_vpp(params, duration_s, fibre, site_m)
    sd = params.threshold_noise_cv * mean
    return 0.5 * (1.0 + math.erf((amplitude_vpp - mean) / (sd * math.sqrt(2.0))))


def _triphasic_constants(skew: float) -> tuple[float, float]:
    # w(x) = (x² − 1 + skew·x)·e^(−x²/2); its main (negative) peak is the root
    # of w' = (−x³ − skew·x² + 3x + skew)·e^(−x²/2) nearest 0.
    roots = np.roots([-1.0, -skew, 3.0, skew])
    x0 = float(min(roots.real, key=abs))
    return x0, -(x0 * x0 - 1 + skew * x0) * math.exp(-0.5 * x0 * x0)


SPIKE_SHAPES = ("biphasic", "triphasic")
TRIPHASIC_SKEW = 0.4  # leading : main : trailing phases ≈ 0.30 : 1 : 0.60
_TRI_X0, _TRI_PEAK = _triphasic_constants(TRIPHASIC_SKEW)


def spike_waveform(t_s: np.ndarray, width_s, shape: str = "biphasic") -> np.ndarray:
    """Single-ended extracellular spike, largest phase ±1, Gaussian σ ``width_s``.

    "biphasic": first derivative of a Gaussian, + then −, zero crossing at t = 0.
    "triphasic": skewed second derivative, small + / main − / larger +, the main
    phase's peak at t = 0. Zero net area either way.
    """
    x = t_s / width_s
    if shape == "biphasic":
        return -x * np.exp(0.5 - 0.5 * x * x)
    if shape != "triphasic":
        raise ValueError(f"spike_shape {shape!r} is not one of {SPIKE_SHAPES}")
    x = x + _TRI_X0
    return (x * x - 1.0 + TRIPHASIC_SKEW * x) * np.exp(-0.5 * x * x) / _TRI_PEAK


def twitch(t_s: np.ndarray, peak_s: float, relax_s: float) -> np.ndarray:
    """Twitch shape (1 − e^(−t/τr))²·e^(−t/τd), peak 1, 0 for t < 0.

    The squared rise starts with zero slope, as muscle tension builds smoothly.
    """
    tau_r = _rise_tau(peak_s, relax_s)
    t = np.maximum(t_s, 0.0)
    shape = (1.0 - np.exp(-t / tau_r)) ** 2 * np.exp(-t / relax_s)
    peak = (1.0 - math.exp(-peak_s / tau_r)) ** 2 * math.exp(-peak_s / relax_s)
    return np.where(t_s > 0, shape / peak, 0.0)


def _rise_tau(peak_s: float, relax_s: float) -> float:
    # Peak of (1-e^{-t/a})²e^{-t/b} at t* = a·ln(1 + 2b/a); solve for a by bisection.
    lo, hi = 1e-4, peak_s
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mid * math.log(1 + 2 * relax_s / mid) < peak_s:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def to_adc_counts(
    volts_input: np.ndarray,
    gain: float,
    adc_bits: int = 16,
    adc_range_vpp: float = 5.0,
) -> np.ndarray:
    """Quantise input-referred volts like the board: gain, then a clipping ADC."""
    lsb = adc_range_vpp / 2**adc_bits
    top = 2 ** (adc_bits - 1) - 1
    counts = np.rint(np.asarray(volts_input) * gain / lsb)
    return np.clip(counts, -top - 1, top).astype(np.int16)


@dataclass
class StimOutcome:
    """What one stimulus did (ground truth)."""

    onset_sample: int
    amplitude_vpp: float
    duration_s: float
    polarity: int
    mgf_fired: bool
    lgf_fired: bool
    # Spike peak time at each channel, in (fractional) samples; NaN if not fired.
    mgf_spike_samples: list[float] = field(default_factory=list)
    lgf_spike_samples: list[float] = field(default_factory=list)
    # The configuration: cathode and anode electrode indices (anode None = the
    # common return) and the site, the cathode's position (m from the head).
    cathode: int = 0
    anode: int | None = 1
    site_m: float = 0.004


class WormModel:
    """Renders the four (or more) channels and the segment positions over time."""

    def __init__(
        self,
        params: WormParams | None = None,
        geometry: RacewayGeometry | None = None,
        *,
        fs_hz: float = 30_000.0,
        seed: int = 0,
    ) -> None:
        self.params = params or WormParams()
        self.geometry = geometry or RacewayGeometry()
        self.fs_hz = float(fs_hz)
        self.seed = seed
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        g = self.geometry
        self._a = np.array([a for a, _ in g.recording_pairs_m])
        self._b = np.array([b for _, b in g.recording_pairs_m])
        # Artifact coupling per configuration (cathode, anode), made on first use.
        self._artifact_gains: dict[tuple[int, int | None], np.ndarray] = {}
        drift_rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        self._drift_freq = drift_rng.uniform(0.05, 0.5, size=(3, g.n_channels))
        self._drift_phase = drift_rng.uniform(0, 2 * np.pi, size=(3, g.n_channels))
        self._hum_phase = drift_rng.uniform(0, 2 * np.pi, size=g.n_channels)
        # Hum: fundamental and harmonics as sin·A + cos·B per channel (phase per
        # channel and harmonic), so only 2 trig calls per sample per harmonic.
        p = self.params
        harm_rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
        amps = [p.hum_uv, *p.hum_harmonics_uv]
        phases = [
            self._hum_phase,
            *(
                harm_rng.uniform(0, 2 * np.pi, size=g.n_channels)
                for _ in p.hum_harmonics_uv
            ),
        ]
        self._hum_terms = [
            (k + 1, a * 1e-6 * np.cos(ph), a * 1e-6 * np.sin(ph))
            for k, (a, ph) in enumerate(zip(amps, phases, strict=True))
            if a != 0
        ]
        self._channel_factor = self._channel_factors(g.n_channels)
        self.outcomes: list[StimOutcome] = []
        self._noise_cache: dict[int, np.ndarray] = {}
        # t0, arrivals (2, n_ch), amplitude V, σ at electrodes a and b (2, n_ch)
        self._spikes: list[tuple[float, np.ndarray, float, np.ndarray]] = []
        # [onset, end, amp_vpp, duration, polarity, artifact gain per channel]
        self._pulses: list[list] = []
        self._volleys: list[tuple[float, float, float]] = []  # time_s, strain, site_m
        self._last_fire = {"mgf": -1e9, "lgf": -1e9}
        self._habituation = 0.0
        self._last_stim_s = -1e9
        self._recent_volleys = 0.0
        self._last_volley_s = -1e9

    def spike_widths_s(self, site_m: float) -> np.ndarray:
        """σ of the spike at electrodes a and b of each pair, ``(2, n_channels)``,
        for a spike started at ``site_m``: temporal dispersion grows it with the
        distance travelled, whichever way."""
        p = self.params
        spread = p.spike_width_s * p.spike_dispersion_per_m
        return p.spike_width_s + spread * np.abs(np.stack([self._a, self._b]) - site_m)

    def artifact_gain(self, cathode: int = 0, anode: int | None = 1) -> np.ndarray:
        """Artifact coupling at each pair for a configuration: decays with the
        distance from the current's centre, the cathode–anode midpoint (the
        cathode itself against the distant common return, whose current spreads
        wider: ``artifact_common_return_factor`` × the coupling)."""
        key = (cathode, anode)
        gain = self._artifact_gains.get(key)
        if gain is None:
            g, p = self.geometry, self.params
            x_c = g.site_m(cathode)
            if anode is None:
                centre, coupling = (
                    x_c,
                    p.artifact_coupling * p.artifact_common_return_factor,
                )
            else:
                centre, coupling = 0.5 * (x_c + g.site_m(anode)), p.artifact_coupling
            gain = coupling * np.exp(
                -np.abs(g.pair_centres_m() - centre) / p.artifact_length_m
            )
            self._artifact_gains[key] = gain
        return gain

    def _channel_factors(self, n_ch: int) -> np.ndarray | None:
        """Polarity × (1 + gain error) per channel; None when all are 1."""
        p = self.params
        factor = np.ones(n_ch)
        for name, values, fn in (
            ("channel_polarity", p.channel_polarity, float),
            ("channel_gain_error", p.channel_gain_error, lambda e: 1.0 + e),
        ):
            if not values:
                continue
            if len(values) != n_ch:
                raise ValueError(
                    f"{name} has {len(values)} entries; the raceway has {n_ch} "
                    "channels (give one per channel, or none)"
                )
            factor *= np.array([fn(v) for v in values])
        return None if np.all(factor == 1.0) else factor

    # ------------------------------------------------------------ stimulation

    def stimulate(
        self,
        onset_sample: int,
        amplitude_vpp: float,
        duration_s: float,
        polarity: int = 0,
        *,
        cathode: int = 0,
        anode: int | None = 1,
    ) -> StimOutcome:
        """Deliver one pulse at ``onset_sample`` through the configuration
        (``cathode``, ``anode``; anode None = the common return); decide which
        fibres fire. Spikes start under the cathode and travel both ways."""
        p = self.params
        g = self.geometry
        site_m = g.site_m(cathode)
        if anode is not None and (
            anode == cathode or not 0 <= anode < g.n_stim_electrodes
        ):
            raise ValueError(
                f"anode {anode}: allowed an electrode 0–{g.n_stim_electrodes - 1} "
                f"other than the cathode {cathode}, or None (common return)"
            )
        t0 = onset_sample / self.fs_hz
        # Habituation decays between stimuli, then grows by one step.
        self._habituation *= math.exp(
            -(t0 - self._last_stim_s) / p.habituation_recovery_s
        )
        self._last_stim_s = t0
        outcome = StimOutcome(
            onset_sample, amplitude_vpp, duration_s, polarity, False, False,
            cathode=cathode, anode=anode, site_m=site_m,
        )  # fmt: skip
        n_ch = g.n_channels
        outcome.mgf_spike_samples = [math.nan] * n_ch
        outcome.lgf_spike_samples = [math.nan] * n_ch
        widths = self.spike_widths_s(site_m)
        for fibre, velocity, amp_uv, strain in (
            ("mgf", p.mgf_velocity_m_per_s, p.mgf_spike_uv, p.mgf_strain),
            ("lgf", p.lgf_velocity_m_per_s, p.lgf_spike_uv, p.lgf_strain),
        ):
            mean = threshold_vpp(p, duration_s, fibre, site_m) * (
                1.0 + self._habituation
            )
            threshold = mean * (
                1.0 + p.threshold_noise_cv * self._rng.standard_normal()
            )
            refractory = t0 - self._last_fire[fibre] < p.refractory_s
            if amplitude_vpp < threshold or refractory:
                continue
            self._last_fire[fibre] = t0
            # Spike initiated under the cathode after the utilisation time;
            # arrives at x after |x − x_site|/v, on either side of the site.
            start_s = t0 + p.utilisation_s
            t_a = start_s + np.abs(self._a - site_m) / velocity
            t_b = start_s + np.abs(self._b - site_m) / velocity
            recruit = 1.0 + p.recruitment_gain * math.tanh(
                (amplitude_vpp - threshold) / threshold * 3
            )
            amp_v = amp_uv * 1e-6 * recruit
            self._spikes.append((t0, np.stack([t_a, t_b]), amp_v, widths))
            peaks = 0.5 * (t_a + t_b) * self.fs_hz
            setattr(outcome, f"{fibre}_fired", True)
            setattr(outcome, f"{fibre}_spike_samples", peaks.tolist())
            self._add_volley(start_s, strain, site_m)
        self._habituation += p.habituation_per_stimulus
        self._pulses.append([onset_sample, onset_sample + duration_s * self.fs_hz,
                             amplitude_vpp, duration_s, polarity,
                             self.artifact_gain(cathode, anode)])  # fmt: skip
        self.outcomes.append(outcome)
        return outcome

    def truncate_stimulus(self, at_sample: float) -> None:
        """End the current pulse's artifact at ``at_sample`` (DISARM, host loss)."""
        for pulse in self._pulses:
            if pulse[0] <= at_sample < pulse[1]:
                pulse[1] = at_sample

    def _add_volley(self, time_s: float, strain: float, site_m: float) -> None:
        p = self.params
        self._recent_volleys *= math.exp(
            -(time_s - self._last_volley_s) / p.antifacilitation_recovery_s
        )
        self._last_volley_s = time_s
        scale = (1.0 - p.antifacilitation) ** self._recent_volleys
        self._recent_volleys += 1.0
        self._volleys.append(
            (time_s + p.electromechanical_delay_s, strain * scale, site_m)
        )

    # ------------------------------------------------------------ signals

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Volts at the amplifier inputs, ``(n_samples, n_channels)`` float64.

        Every term is a function of the sample index alone (no filter state), so
        any chunking of the stream gives the same numbers.
        """
        p = self.params
        n_ch = self.geometry.n_channels
        if n_samples <= 0:
            return np.zeros((0, n_ch))
        idx = np.arange(start_sample, start_sample + n_samples)
        t = idx / self.fs_hz
        out = self._noise(start_sample, n_samples, n_ch) * (p.noise_uv_rms * 1e-6)
        for k, a_sin, a_cos in self._hum_terms:
            # A·sin(kωt + φ) = A·cos φ·sin kωt + A·sin φ·cos kωt
            phase = 2 * np.pi * k * p.hum_hz * t
            out += np.sin(phase)[:, None] * a_sin + np.cos(phase)[:, None] * a_cos
        if p.drift_uv:
            drift = np.zeros((n_samples, n_ch))
            for k in range(3):
                drift += np.sin(
                    2 * np.pi * self._drift_freq[k] * t[:, None] + self._drift_phase[k]
                )
            out += p.drift_uv * 1e-6 / 3 * drift
        t_first, t_last = t[0], t[-1]
        for _, arrivals, amp_v, (wa, wb) in self._spikes:
            span = 6 * max(wa.max(), wb.max())
            lo, hi = arrivals.min() - span, arrivals.max() + span
            if hi < t_first or lo > t_last:
                continue
            sel = (t >= lo) & (t <= hi)
            ts = t[sel][:, None]
            w = spike_waveform(ts - arrivals[0], wa, p.spike_shape) - spike_waveform(
                ts - arrivals[1], wb, p.spike_shape
            )
            out[sel] += amp_v * w
        self._add_artifacts(out, idx)
        if self._channel_factor is not None:
            out *= self._channel_factor
        return out

    def _add_artifacts(self, out: np.ndarray, idx: np.ndarray) -> None:
        """Add every pulse's artifact: the pulse, two tails, ringing."""
        p = self.params
        fs = self.fs_hz
        ringing = p.artifact_ringing_hz > 0 and p.artifact_ringing_fraction != 0
        after_s = 8 * max(
            p.artifact_tail_s,
            p.artifact_slow_tail_s if p.artifact_slow_tail_fraction else 0.0,
            p.artifact_ringing_tau_s if ringing else 0.0,
        )
        for onset, end, amp_vpp, duration_s, polarity, gain in self._pulses:
            tail_end = end + after_s * fs
            if tail_end < idx[0] or onset > idx[-1]:
                continue
            sel = (idx >= onset) & (idx < tail_end)
            k = idx[sel]
            tk = (k - onset) / fs
            sign = -1.0 if polarity else 1.0
            during = k < end
            half = amp_vpp / 2
            wave = np.where(
                during, sign * half * np.sin(2 * np.pi * tk / duration_s), 0.0
            )
            after = np.maximum((k - end) / fs, 0.0)
            tail = p.artifact_tail_fraction * np.exp(-after / p.artifact_tail_s)
            if p.artifact_slow_tail_fraction:
                tail += p.artifact_slow_tail_fraction * np.exp(
                    -after / p.artifact_slow_tail_s
                )
            tail *= half
            if ringing:
                tail += (
                    sign
                    * half
                    * p.artifact_ringing_fraction
                    * np.exp(-after / p.artifact_ringing_tau_s)
                    * np.sin(2 * np.pi * p.artifact_ringing_hz * after)
                )
            wave += np.where(during, 0.0, tail)
            out[sel] += wave[:, None] * gain[None, :]

    def _noise(self, start: int, n: int, n_ch: int) -> np.ndarray:
        # Noise comes in fixed pages, each seeded by (seed, page): any chunking
        # of the stream draws exactly the same numbers.
        out = np.empty((n, n_ch))
        first_page, last_page = start // NOISE_PAGE, (start + n - 1) // NOISE_PAGE
        for page in range(first_page, last_page + 1):
            block = self._noise_cache.get(page)
            if block is None:
                rng = np.random.default_rng(
                    np.random.SeedSequence([self.seed, 7, page])
                )
                block = rng.standard_normal((NOISE_PAGE, n_ch))
                if len(self._noise_cache) >= 4:  # a stream moves forward
                    self._noise_cache.pop(min(self._noise_cache))
                self._noise_cache[page] = block
            p0 = page * NOISE_PAGE
            lo, hi = max(start, p0), min(start + n, p0 + NOISE_PAGE)
            out[lo - start : hi - start] = block[lo - p0 : hi - p0]
        return out

    # ------------------------------------------------------------ muscle

    def segment_strain(self, sample_index) -> np.ndarray:
        """Strain of every segment (negative = contraction), ``(..., n_segments)``."""
        p = self.params
        t = np.atleast_1d(np.asarray(sample_index, dtype=float)) / self.fs_hz
        by_site: dict[float, np.ndarray] = {}
        for start, strain, site_m in self._volleys:
            twitch_t = strain * twitch(
                t - start, p.twitch_peak_s, p.twitch_relaxation_s
            )
            by_site[site_m] = by_site.get(site_m, 0.0) + twitch_t
        out = np.zeros((t.shape[0], self.geometry.n_segments))
        for site_m, total in by_site.items():
            out -= total[:, None] * self.contraction_profile(site_m)[None, :]
        return out

    def contraction_profile(self, site_m: float = 0.0) -> np.ndarray:
        """Each segment's share of a volley's shortening, 1 at the stimulated
        site, falling to ½ a body length away: ½ + ½·cos²(π/2 · d/L), d the
        distance from the site along the body (assumed profile; ``site_m`` 0
        gives the head-first profile of a stimulus under the head)."""
        g = self.geometry
        n_seg = g.n_segments
        u = np.linspace(0.0, 1.0, n_seg)
        d = np.abs(u - site_m / g.worm_length_m)
        return 0.5 + 0.5 * np.cos(np.pi / 2 * d) ** 2

    def segment_boundaries_m(self, sample_index) -> np.ndarray:
        """Raceway x of the ``n_segments + 1`` segment boundaries (head first).

        That is ``head_on_raceway_m`` + each boundary's distance along the body
        from the head; for a worm that bends or crawls (``WormParams.bend_*``,
        ``crawl_*``) ``firmware_bridge.sim.posture.Posture`` says where on the
        raceway those body positions lie.
        """
        g = self.geometry
        rest = g.worm_length_m / g.n_segments
        strain = self.segment_strain(sample_index)
        lengths = rest * (1.0 + strain)
        bounds = g.head_on_raceway_m + np.concatenate(
            [np.zeros((lengths.shape[0], 1)), np.cumsum(lengths, axis=1)], axis=1
        )
        return bounds[0] if np.ndim(sample_index) == 0 else bounds

    # ------------------------------------------------------------ truth

    def ground_truth(self) -> dict:
        """Everything the model decided, JSON-serialisable."""
        return {
            "seed": self.seed,
            "fs_hz": self.fs_hz,
            "params": self.params.to_dict(),
            "geometry": self.geometry.to_dict(),
            # σ of the spike waveform at electrodes a and b of each pair
            # (temporal dispersion), seconds, for a spike started under
            # electrode 0; each stimulus's own are in its "spike_width_s_at_pairs".
            "spike_width_s_at_pairs": self.spike_widths_s(
                self.geometry.site_m(0)
            ).T.tolist(),
            "stimuli": [asdict(o) for o in self.outcomes],
            "volleys": [
                {"time_s": t, "strain": s, "site_m": x} for t, s, x in self._volleys
            ],
        }
