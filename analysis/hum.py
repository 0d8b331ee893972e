"""Mains hum: fitted on the quiet samples before a stimulus, removed from its epoch.

A band-pass from 300 Hz lets hum harmonics at 300–420 Hz through almost whole,
and a 200 µV hum with 30–80 µV harmonics then sets the noise floor. Hum is
stationary over tenths of a second, so its fundamental and harmonics (sine and
cosine each, plus a straight-line baseline) are fitted by least squares to the
tens of milliseconds before the stimulus, where nothing else is going on, and
the fitted sinusoids are subtracted from the whole epoch. 50 Hz and 60 Hz are
both tried and the better fit kept, so the mains frequency need not be given.

The design matrices depend only on the lengths and the sample rate, which are
the same for every stimulus of a recording, so their pseudo-inverses are cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from analysis._volley_kernels import residual_energy

MAINS_HZ = (50.0, 60.0)
HARMONICS = 7  # up to 350 Hz (50) / 420 Hz (60): above that the band-pass passes
MIN_FIT_S = 0.025  # below 1.25 periods of 50 Hz the harmonics are not separable


@dataclass(frozen=True, slots=True)
class HumFit:
    """The hum removed from one epoch."""

    mains_hz: float  # NaN when the epoch had too little quiet signal before it
    amplitude_uv: np.ndarray  # (n_channels,) fundamental's amplitude


@lru_cache(maxsize=32)
def _design(n_fit: int, n_total: int, fs_hz: float, mains_hz: float, harmonics: int):
    t = np.arange(n_total) / fs_hz
    columns = [np.ones(n_total), t - t[n_fit - 1] / 2]
    for k in range(1, harmonics + 1):
        w = 2 * np.pi * k * mains_hz * t
        columns += [np.sin(w), np.cos(w)]
    basis = np.column_stack(columns)
    pinv = np.linalg.pinv(basis[:n_fit])
    return basis, pinv


def remove_hum(
    epoch_uv: np.ndarray,
    *,
    fs_hz: float,
    quiet_until: int,
    mains_hz: float | None = None,
    harmonics: int = HARMONICS,
) -> tuple[np.ndarray, HumFit]:
    """``epoch_uv`` minus the hum fitted to rows ``[0, quiet_until)``.

    ``mains_hz`` None tries 50 and 60 Hz and keeps the better fit. With less
    than 25 ms of quiet signal the epoch is returned unchanged (mains_hz NaN).
    Harmonics at or above the Nyquist frequency are left out.
    """
    x = np.asarray(epoch_uv, dtype=np.float64)
    n_ch = x.shape[1]
    if quiet_until < MIN_FIT_S * fs_hz:
        return x, HumFit(float("nan"), np.zeros(n_ch))
    best = None
    for f in MAINS_HZ if mains_hz is None else (float(mains_hz),):
        k = min(harmonics, int((0.5 * fs_hz - 1) // f))
        basis, pinv = _design(quiet_until, x.shape[0], float(fs_hz), f, k)
        coef = pinv @ x[:quiet_until]
        # the residual's energy in one kernel (numpy's sum to the bit)
        energy = residual_energy(
            np.ascontiguousarray(x[:quiet_until]), basis[:quiet_until] @ coef
        )
        if best is None or energy < best[0]:
            best = (energy, f, basis, coef)
    assert best is not None
    _, f, basis, coef = best
    # Subtract the sinusoids only: the baseline is the artifact model's business.
    hum = basis[:, 2:] @ coef[2:]
    amplitude = np.hypot(coef[2], coef[3])
    return x - hum, HumFit(f, amplitude)
