"""Per-stimulus AP propagation: volleys, latency per pair, conduction velocity.

For one stimulus-locked epoch (µV, ``(n_samples, n_channels)``):

1. subtract the fitted artifact template (artifact.py);
2. find threshold crossings per channel after the stimulus (Numba detector);
   spikes of one volley on successive pairs form the first volley, the next
   crossing per channel (≥ 0.8 ms later) the second (the slower fibre);
3. time each volley at each pair with sub-sample precision: parabolic
   interpolation of the largest-SNR channel's extremum, then cross-correlation
   of that waveform with every other pair (interpolated lag);
4. fit latency = t0 + position / velocity by least squares across pairs: the
   slope's standard error gives the velocity's;
5. name the volleys: of two, the faster is the medial giant fibre (MGF ≈ 30 m/s,
   LGF ≈ 15 m/s); a lone volley is medial if faster than
   ``mgf_min_velocity_m_per_s``, lateral otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.ap_detect import detect_spikes, noise_mad
from analysis.artifact import subtract_artifact


@dataclass(frozen=True, slots=True)
class Volley:
    """One action potential travelling along the worm (one giant fibre)."""

    fibre: str  # "mgf" or "lgf"
    latency_s: np.ndarray  # per channel, from stimulus onset; NaN where absent
    amplitude_uv: np.ndarray  # peak-to-peak per channel; NaN where absent
    conduction_velocity_m_per_s: float
    velocity_se_m_per_s: float


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

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""

        def clean(values):
            return [
                None if not np.isfinite(v) else float(v) for v in np.atleast_1d(values)
            ]

        v = self.conduction_velocity_m_per_s
        return {
            "onset_sample": int(self.onset_sample),
            "responded": bool(self.responded),
            "latency_s": clean(self.latency_s),
            "amplitude_uv": clean(self.amplitude_uv),
            "conduction_velocity_m_per_s": float(v) if np.isfinite(v) else None,
            "volleys": [
                {
                    "fibre": vo.fibre,
                    "latency_s": clean(vo.latency_s),
                    "amplitude_uv": clean(vo.amplitude_uv),
                    "conduction_velocity_m_per_s": float(
                        vo.conduction_velocity_m_per_s
                    ),
                }
                for vo in self.volleys
            ],
        }


def fit_velocity(
    positions_m: np.ndarray, latencies_s: np.ndarray
) -> tuple[float, float, float]:
    """Least-squares ``latency = t0 + x / v``: (velocity, SE, t0); NaN if < 2 points."""
    x = np.asarray(positions_m, dtype=float)
    y = np.asarray(latencies_s, dtype=float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return np.nan, np.nan, np.nan
    slope, t0 = np.polyfit(x, y, 1)
    if slope <= 0:
        return np.nan, np.nan, float(t0)
    if x.size > 2:
        resid = y - (t0 + slope * x)
        se_slope = np.sqrt(resid @ resid / (x.size - 2) / np.sum((x - x.mean()) ** 2))
    else:
        se_slope = np.nan
    velocity = 1.0 / slope
    return float(velocity), float(se_slope / slope**2), float(t0)


def _fit_rejecting_outliers(
    positions: np.ndarray, latency: np.ndarray, tolerance_s: float, min_channels: int
) -> tuple[np.ndarray, float, float]:
    """Drop pairs off the propagation line, then fit the rest by least squares.

    "Off" is judged against a Theil–Sen line (median of pairwise slopes), which
    one wrong pair cannot drag: a residual artifact or the other fibre's spike
    taken for this volley's is more than ``tolerance_s`` from it.
    """
    latency = latency.copy()
    ok = np.flatnonzero(np.isfinite(latency))
    if ok.size > min_channels:
        x, y = positions[ok], latency[ok]
        i, j = np.triu_indices(ok.size, k=1)
        dx = x[j] - x[i]
        slopes = (y[j] - y[i])[dx != 0] / dx[dx != 0]
        if slopes.size:
            slope = float(np.median(slopes))
            t0 = float(np.median(y - slope * x))
            resid = np.abs(y - (t0 + slope * x))
            off = resid > tolerance_s
            if (~off).sum() >= min_channels:
                latency[ok[off]] = np.nan
    velocity, se, _ = fit_velocity(positions, latency)
    return latency, velocity, se


def _parabolic(y: np.ndarray, i: int) -> float:
    """Sub-sample position of the extremum at ``i`` (parabola through 3 points)."""
    if i <= 0 or i >= y.size - 1:
        return float(i)
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    denom = y0 - 2 * y1 + y2
    return float(i) if denom == 0 else i + 0.5 * (y0 - y2) / denom


def _time_volley(
    clean: np.ndarray, coarse: np.ndarray, snr: np.ndarray, half: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample times and peak-to-peak amplitudes of one volley at every pair."""
    n, n_ch = clean.shape
    times = np.full(n_ch, np.nan)
    amps = np.full(n_ch, np.nan)
    present = np.flatnonzero(np.isfinite(coarse))
    if present.size == 0:
        return times, amps
    ref = present[np.argmax(snr[present])]
    c = int(coarse[ref])
    lo, hi = max(c - half, 1), min(c + half, n - 1)
    seg = clean[lo:hi, ref]
    k = int(np.argmax(np.abs(seg)))
    t_ref = lo + _parabolic(np.abs(seg), k)
    template = clean[max(round(t_ref) - half, 0) : round(t_ref) + half, ref]
    for ch in present:
        cc = int(coarse[ch])
        a, b = max(cc - 2 * half, 0), min(cc + 2 * half, n)
        window = clean[a:b, ch]
        amps[ch] = float(np.ptp(clean[max(cc - half, 0) : cc + half, ch]))
        if ch == ref:
            times[ch] = t_ref
            continue
        if window.size < template.size:
            continue
        xc = np.correlate(window, template, mode="valid")
        j = int(np.argmax(xc))
        start_template = max(round(t_ref) - half, 0)
        times[ch] = a + _parabolic(xc, j) + (t_ref - start_template)
    return times, amps


def analyse_stimulus(
    epoch_uv: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    duration_s: float,
    positions_m: np.ndarray,
    noise_uv: np.ndarray | None = None,
    threshold_sd: float = 6.0,
    search_ms: tuple[float, float] = (0.2, 12.0),
    min_channels: int = 2,
    mgf_min_velocity_m_per_s: float = 20.0,
) -> StimulusResponse:
    """Analyse one epoch whose stimulus starts at row ``onset``."""
    clean = subtract_artifact(epoch_uv, fs_hz=fs_hz, onset=onset, duration_s=duration_s)
    n, n_ch = clean.shape
    positions = np.asarray(positions_m, dtype=float)
    # The epoch's own residual gives its noise (MAD is robust to the spikes in it),
    # so a stimulus is analysed the same way online and offline.
    own = noise_mad(clean)
    noise = np.maximum(own if noise_uv is None else np.asarray(noise_uv, float), 1e-9)
    start = onset + round(search_ms[0] * 1e-3 * fs_hz)
    stop = min(n - 1, onset + round(search_ms[1] * 1e-3 * fs_hz))
    peaks = detect_spikes(
        clean,
        fs_hz=fs_hz,
        noise=noise,
        threshold_sd=threshold_sd,
        refractory_ms=0.8,
        sign=0,
        start=start,
        stop=stop,
    )
    half = max(2, round(0.5e-3 * fs_hz))
    volleys: list[Volley] = []
    for order in range(2):  # first and second crossing per channel
        coarse = np.full(n_ch, np.nan)
        snr = np.zeros(n_ch)
        for ch in range(n_ch):
            s = peaks.of_channel(ch)
            if s.size > order:
                coarse[ch] = s[order]
                snr[ch] = np.abs(clean[s[order], ch]) / noise[ch]
        if np.isfinite(coarse).sum() < min_channels:
            break
        times, amps = _time_volley(clean, coarse, snr, half)
        latency = (times - onset) / fs_hz
        tolerance_s = 0.1e-3 + 1.0 / fs_hz
        latency, velocity, se = _fit_rejecting_outliers(
            positions, latency, tolerance_s, min_channels
        )
        amps = np.where(np.isfinite(latency), amps, np.nan)
        if not np.isfinite(velocity) or not 2.0 <= velocity <= 80.0:
            continue
        volleys.append(Volley("", latency, amps, velocity, se))
    volleys.sort(key=lambda v: -v.conduction_velocity_m_per_s)
    # Two volleys: the faster is the medial fibre. One: name it by its speed.
    if len(volleys) == 2:
        names = ("mgf", "lgf")
    elif volleys:
        fast = volleys[0].conduction_velocity_m_per_s >= mgf_min_velocity_m_per_s
        names = ("mgf",) if fast else ("lgf",)
    else:
        names = ()
    volleys = [
        Volley(
            name,
            v.latency_s,
            v.amplitude_uv,
            v.conduction_velocity_m_per_s,
            v.velocity_se_m_per_s,
        )
        for name, v in zip(names, volleys, strict=True)
    ]
    first = volleys[0] if volleys else None
    nan = np.full(n_ch, np.nan)
    return StimulusResponse(
        onset_sample=onset,
        responded=first is not None,
        latency_s=first.latency_s if first else nan,
        amplitude_uv=first.amplitude_uv if first else nan,
        conduction_velocity_m_per_s=first.conduction_velocity_m_per_s
        if first
        else np.nan,
        velocity_se_m_per_s=first.velocity_se_m_per_s if first else np.nan,
        volleys=tuple(volleys),
        noise_uv=noise,
    )
