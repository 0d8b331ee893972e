"""Filtering: zero-phase offline (forward-backward), causal online, same filters.

Band-pass Butterworth biquads designed with scipy; applied by the Numba kernel
``sosfilt_inplace``. ``filtfilt`` follows ``scipy.signal.sosfiltfilt`` exactly
(odd extension of 3·(2·n_sections + 1) samples, steady-state initial conditions),
so its result equals scipy's; ``CausalFilter`` carries the filter state between
chunks, so chunked online filtering equals one causal pass over the recording.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

from analysis._kernels import sosfilt_inplace
from analysis._volley_kernels import filtfilt_ext


def bandpass_sos(
    fs_hz: float, low_hz: float = 300.0, high_hz: float = 5000.0, order: int = 2
) -> np.ndarray:
    """Butterworth band-pass as second-order sections; ``high_hz`` capped at 0.45·fs."""
    high = min(high_hz, 0.45 * fs_hz)
    if not 0 < low_hz < high:
        raise ValueError(
            f"band-pass {low_hz}–{high_hz} Hz is empty at fs = {fs_hz} Hz "
            f"(allowed 0 < low < {0.45 * fs_hz:g} Hz)"
        )
    return _butter_bandpass(float(fs_hz), float(low_hz), float(high), int(order)).copy()


@lru_cache(maxsize=16)
def _butter_bandpass(fs_hz: float, low_hz: float, high_hz: float, order: int):
    # Designing the filter costs ~1 ms; it is asked for once per stimulus.
    return signal.butter(order, (low_hz, high_hz), "bandpass", fs=fs_hz, output="sos")


def notch_sos(fs_hz: float, freq_hz: float = 50.0, q: float = 30.0) -> np.ndarray:
    """Second-order notch (line hum) as one section."""
    b, a = signal.iirnotch(freq_hz, q, fs=fs_hz)
    return signal.tf2sos(b, a)


def hum_notch_sos(
    fs_hz: float, mains_hz: float, *, harmonics: int = 3, q: float = 30.0
) -> np.ndarray:
    """Notches at the mains frequency and its harmonics (below 0.45·fs), as
    stacked second-order sections: hum is rarely a pure sinusoid."""
    if mains_hz not in (50.0, 60.0):
        raise ValueError(f"mains_hz is {mains_hz}; allowed 50 or 60 Hz")
    freqs = [
        k * mains_hz for k in range(1, harmonics + 1) if k * mains_hz < 0.45 * fs_hz
    ]
    return np.vstack([notch_sos(fs_hz, f, q) for f in freqs])


def _as_2d(traces: np.ndarray) -> np.ndarray:
    x = np.asarray(traces)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"traces must be (n_samples, n_channels), got {x.shape}")
    return np.array(x, dtype=np.float64, order="C")


def filtfilt(traces: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Zero-phase filter along axis 0 (equals ``scipy.signal.sosfiltfilt``)."""
    x = np.asarray(traces, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"traces must be (n_samples, n_channels), got {x.shape}")
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    padlen, zi0 = _extension(sos.tobytes(), sos.shape[0])
    if x.shape[0] <= padlen:
        raise ValueError(f"need more than {padlen} samples to filter, got {x.shape[0]}")
    # One kernel: extension, forward and backward pass (a few numpy calls
    # each cost as much as the filtering of an epoch).
    return filtfilt_ext(sos, zi0, x, padlen)[padlen:-padlen]


@lru_cache(maxsize=16)
def _extension(sos_bytes: bytes, n_sections: int) -> tuple[int, np.ndarray]:
    # scipy's padding rule and the unit-step state, once per filter
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    padlen = 3 * (
        2 * n_sections + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    )
    return int(padlen), _step_state(sos_bytes, n_sections)


@lru_cache(maxsize=16)
def _step_state(sos_bytes: bytes, n_sections: int) -> np.ndarray:
    # scipy's sosfilt_zi costs ~0.2 ms; the same filter is asked for per epoch.
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    return signal.sosfilt_zi(sos)


class CausalFilter:
    """Causal filtering of a stream chunk by chunk (state carried between calls).

    ``initial``: the stream's first sample per channel, to start as if the
    input had always been that value (no start-up transient from an offset,
    as ``filtfilt`` starts); by default the filter starts at rest (zero state).
    """

    def __init__(
        self, sos: np.ndarray, n_channels: int, *, initial: np.ndarray | None = None
    ) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        n_sections = self.sos.shape[0]
        if initial is None:
            self.zi = np.zeros((n_sections, n_channels, 2))
        else:
            x0 = np.asarray(initial, dtype=np.float64).reshape(n_channels)
            step = _step_state(self.sos.tobytes(), n_sections)  # (n_sections, 2)
            self.zi = np.ascontiguousarray(step[:, None, :] * x0[None, :, None])

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Filter the next chunk; returns float64 ``(n, n_channels)``."""
        x = _as_2d(chunk)
        sosfilt_inplace(self.sos, x, self.zi)
        return x
