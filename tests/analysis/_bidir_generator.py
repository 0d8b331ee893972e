"""An independent generator of spikes that start at a site and travel both ways.

Written for the tests of ``analysis.bidirectional`` and deliberately not the
simulator (``firmware_bridge.sim``): its own spike shapes, artifact, hum and
noise, so that the analysis is not validated against the model it was tuned on.

Truth: a giant-fibre spike starts at ``site_m`` at ``t0_s`` after the pulse's
start and reaches position ``x`` at ``t0_s + |x − site_m| / v``. A recording
pair is two electrodes ``gap_m`` apart; each sees a monophasic-extracellular
(triphasic: small +, large −, small +) waveform as the spike passes under it,
and the pair records their difference (so a pair passed head-ward records the
negative of one passed tail-ward). Per channel: its own width, amplitude,
gain mismatch between the two electrodes, optional reversed wiring, optional
"missing" (electrode off the worm: noise only). Around it: white noise, 50 Hz
hum with harmonics, and a bipolar sinusoidal pulse artifact (one period over
the pulse, size falling with distance from the site) with an exponential
recovery tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STANDARD_PAIRS_M = (0.0375, 0.0575, 0.0775, 0.0975)  # from the head end


@dataclass(frozen=True)
class Fibre:
    velocity_m_per_s: float
    amplitude_uv: float = 120.0
    t0_s: float = 0.6e-3  # pulse start -> spike initiation at the site


@dataclass(frozen=True)
class Scene:
    """One stimulus: where it starts, which fibres fire, how it is recorded."""

    pairs_m: tuple[float, ...] = STANDARD_PAIRS_M
    site_m: float = 0.0675
    fibres: tuple[Fibre, ...] = (Fibre(30.0),)
    fs_hz: float = 30_000.0
    pre_s: float = 0.05
    post_s: float = 0.02
    pulse_s: float = 2e-3
    artifact_uv: float = 1500.0  # at the site; falls by e per 20 mm
    noise_uv: float = 4.0
    hum_uv: float = 30.0
    mains_hz: float = 50.0
    gap_m: float = 0.004  # between a pair's two electrodes
    width_s: tuple[float, float] = (0.10e-3, 0.16e-3)  # Gaussian σ range per channel
    reversed_channels: tuple[int, ...] = ()
    missing_channels: tuple[int, ...] = ()
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def onset(self) -> int:
        return round(self.pre_s * self.fs_hz)

    def arrival_s(self, fibre: Fibre) -> np.ndarray:
        """True arrival at each pair's centre, s after the pulse's start."""
        x = np.asarray(self.pairs_m)
        return fibre.t0_s + np.abs(x - self.site_m) / fibre.velocity_m_per_s


def _triphasic(t: np.ndarray, sigma: float) -> np.ndarray:
    """Negative second derivative of a Gaussian, peak −1: + − + (skewed a little
    by a shifted copy so that no two shapes are mirror images)."""
    u = t / sigma
    main = (u**2 - 1.0) * np.exp(-0.5 * u**2)
    u2 = (t - 0.8 * sigma) / (1.6 * sigma)
    tail = 0.25 * np.exp(-0.5 * u2**2)
    w = main + tail
    return w / np.abs(w).max()


def render(scene: Scene) -> np.ndarray:
    """The epoch (µV), ``(n_samples, n_pairs)``, pulse at row ``scene.onset``."""
    rng = np.random.default_rng(scene.seed)
    fs = scene.fs_hz
    n = round((scene.pre_s + scene.post_s) * fs)
    t = (np.arange(n) - scene.onset) / fs  # s from the pulse's start
    x = np.asarray(scene.pairs_m, dtype=float)
    out = np.zeros((n, x.size))
    for c, xc in enumerate(x):
        sigma = rng.uniform(*scene.width_s)
        mismatch = rng.uniform(0.8, 1.2)
        scale = rng.uniform(0.6, 1.4)
        if c not in scene.missing_channels:
            for fibre in scene.fibres:
                a = scene.site_m
                # each electrode of the pair, timed from its own distance
                ea, eb = xc - scene.gap_m / 2, xc + scene.gap_m / 2
                ta = fibre.t0_s + abs(ea - a) / fibre.velocity_m_per_s
                tb = fibre.t0_s + abs(eb - a) / fibre.velocity_m_per_s
                out[:, c] += (
                    scale
                    * fibre.amplitude_uv
                    * (_triphasic(t - ta, sigma) - mismatch * _triphasic(t - tb, sigma))
                )
        # pulse artifact: one period of a sinusoid, then recovery
        size = scene.artifact_uv * np.exp(-abs(xc - scene.site_m) / 0.02)
        size *= rng.uniform(0.7, 1.3) * rng.choice([-1.0, 1.0])
        during = (t >= 0) & (t < scene.pulse_s)
        out[during, c] += size * np.sin(2 * np.pi * t[during] / scene.pulse_s)
        after = t >= scene.pulse_s
        tau = rng.uniform(0.6e-3, 1.5e-3)
        out[after, c] += 0.04 * size * np.exp(-(t[after] - scene.pulse_s) / tau)
        # hum: fundamental and two harmonics, random phases
        for k, rel in ((1, 1.0), (2, 0.3), (3, 0.5)):
            phase = rng.uniform(0, 2 * np.pi)
            out[:, c] += (
                scene.hum_uv * rel * np.sin(2 * np.pi * k * scene.mains_hz * t + phase)
            )
        out[:, c] += rng.normal(0.0, scene.noise_uv, n)
        if c in scene.reversed_channels:
            out[:, c] *= -1.0
    return out


def latencies(
    pairs_m,
    site_m: float,
    velocity_m_per_s: float,
    *,
    t0_s: float = 0.5e-3,
    jitter_s: float = 0.0,
    missing=(),
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Arrival latencies alone (s), NaN at ``missing`` pairs, Gaussian jitter."""
    rng = rng or np.random.default_rng(0)
    x = np.asarray(pairs_m, dtype=float)
    lat = t0_s + np.abs(x - site_m) / velocity_m_per_s
    lat = lat + rng.normal(0.0, jitter_s, x.size) if jitter_s > 0 else lat
    lat[list(missing)] = np.nan
    return lat
