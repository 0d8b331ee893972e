"""Action-potential detection: noise by MAD, threshold peaks per channel (Numba)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis._kernels import detect_peaks

MAD_TO_SIGMA = 1.4826  # MAD of a Gaussian × this = its standard deviation


@dataclass(frozen=True, slots=True)
class Spikes:
    """Detected peaks: sample index, channel and signed amplitude (input units)."""

    samples: np.ndarray  # int64
    channels: np.ndarray  # int64
    amplitudes: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.samples.size)

    def of_channel(self, channel: int) -> np.ndarray:
        """Sample indices of one channel's peaks."""
        return self.samples[self.channels == channel]


def noise_mad(traces: np.ndarray) -> np.ndarray:
    """Robust noise standard deviation per channel: 1.4826 × median |x − median|."""
    x = np.asarray(traces, dtype=np.float64)
    centred = x - np.median(x, axis=0)
    return MAD_TO_SIGMA * np.median(np.abs(centred), axis=0)


def detect_spikes(
    traces: np.ndarray,
    *,
    fs_hz: float,
    noise: np.ndarray | None = None,
    threshold_sd: float = 5.0,
    refractory_ms: float = 1.0,
    sign: int = -1,
    start: int = 0,
    stop: int | None = None,
    last_peak: np.ndarray | None = None,
) -> Spikes:
    """Peaks beyond ``threshold_sd`` noise SDs, one per ``refractory_ms`` per channel.

    ``traces``: filtered ``(n_samples, n_channels)``. ``noise``: per-channel SD
    (default: ``noise_mad(traces)``). Peaks are reported for samples in
    ``[start, stop)`` only, so overlapping chunks report each peak once.
    ``last_peak`` (int64 per channel, index of the previous peak in this
    chunk's coordinates) carries refractoriness across chunks; it is updated.
    """
    if sign not in (-1, 0, 1):
        raise ValueError(
            f"sign must be -1 (negative), 1 (positive) or 0 (either), got {sign}"
        )
    x = np.ascontiguousarray(traces, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"traces must be (n_samples, n_channels), got {x.shape}")
    sd = noise_mad(x) if noise is None else np.asarray(noise, dtype=np.float64)
    thresholds = np.ascontiguousarray(threshold_sd * sd, dtype=np.float64)
    refractory = max(0, round(refractory_ms * 1e-3 * fs_hz))
    stop = x.shape[0] if stop is None else stop
    capacity = max(16, x.shape[0] * x.shape[1] // max(refractory, 1) // 2 + 16)
    samples = np.empty(capacity, dtype=np.int64)
    channels = np.empty(capacity, dtype=np.int64)
    amps = np.empty(capacity, dtype=np.float64)
    if last_peak is None:
        last_peak = np.full(x.shape[1], -(refractory + 1), dtype=np.int64)
    n = detect_peaks(
        x, thresholds, sign, refractory, start, stop, last_peak, samples, channels, amps
    )
    order = np.lexsort((channels[:n], samples[:n]))
    return Spikes(samples[:n][order], channels[:n][order], amps[:n][order])
