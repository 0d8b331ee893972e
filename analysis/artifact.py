"""Stimulus-artifact removal: blanking, and subtraction of a fitted artifact template.

The artifact of a bipolar sinusoidal pulse is, at every pair, the pulse waveform
scaled by a coupling, followed by a decaying tail, on top of the slow baseline
(drift, hum over a few ms). ``subtract_artifact`` fits that template per channel
by least squares — sin and cos of the pulse during the pulse, exponential tails
after it, a quadratic baseline — and subtracts it. A spike is narrow (< 1 ms) and
biphasic, nearly orthogonal to these smooth functions, so it survives even where
it overlaps the pulse (the MGF at the nearest pairs does).
"""

from __future__ import annotations

import numpy as np

TAIL_TAUS_S = (0.7e-3, 2e-3, 5e-3)


def artifact_basis(
    n_samples: int, *, fs_hz: float, onset: int, duration_s: float
) -> np.ndarray:
    """Design matrix ``(n_samples, k)`` of the artifact template's functions."""
    t = (np.arange(n_samples) - onset) / fs_hz
    span = max(t[-1] - t[0], 1e-9)
    u = (t - t[0]) / span
    during = (t >= 0) & (t < duration_s)
    phase = 2 * np.pi * t / duration_s
    columns = [np.ones(n_samples), u, u * u]
    columns += [
        np.where(during, np.sin(phase), 0.0),
        np.where(during, np.cos(phase), 0.0),
    ]
    after = t - duration_s
    for tau in TAIL_TAUS_S:
        columns.append(np.where(after >= 0, np.exp(-np.maximum(after, 0) / tau), 0.0))
    return np.column_stack(columns)


def subtract_artifact(
    epoch: np.ndarray, *, fs_hz: float, onset: int, duration_s: float
) -> np.ndarray:
    """``epoch`` minus its least-squares artifact template, per channel."""
    x = np.asarray(epoch, dtype=np.float64)
    basis = artifact_basis(x.shape[0], fs_hz=fs_hz, onset=onset, duration_s=duration_s)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return x - basis @ coef


def blank(
    traces: np.ndarray,
    onsets: np.ndarray,
    *,
    fs_hz: float,
    duration_s: float,
    margin_ms: float = 0.5,
) -> np.ndarray:
    """Copy of ``traces`` with each pulse (+ margin) replaced by a straight line."""
    out = np.array(traces, dtype=np.float64)
    margin = round(margin_ms * 1e-3 * fs_hz)
    width = round(duration_s * fs_hz)
    for onset in np.asarray(onsets, dtype=np.int64):
        a = max(0, onset - margin)
        b = min(out.shape[0] - 1, onset + width + margin)
        if b <= a:
            continue
        w = np.linspace(0.0, 1.0, b - a + 1)[:, None]
        out[a : b + 1] = (1 - w) * out[a] + w * out[b]
    return out
