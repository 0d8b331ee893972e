"""Slow, obvious references the Numba kernels must match."""

from __future__ import annotations

import numpy as np
from scipy import signal


def sosfilt_reference(sos, x, zi):
    """scipy's sosfilt along axis 0 with per-channel state (n_sections, n_ch, 2)."""
    y, zf = signal.sosfilt(sos, x, axis=0, zi=np.transpose(zi, (0, 2, 1)))
    return y, np.transpose(zf, (0, 2, 1))


def detect_peaks_reference(traces, thresholds, sign, refractory, start, stop):
    """Plain-Python threshold-peak detector: list of (sample, channel, value)."""
    n, n_ch = traces.shape
    out = []
    for c in range(n_ch):
        last = -refractory - 1
        for i in range(max(1, start), min(stop, n - 1)):
            v, prev, nxt = traces[i, c], traces[i - 1, c], traces[i + 1, c]
            if sign < 0:
                hit = -v > thresholds[c] and v <= prev and v < nxt
            elif sign > 0:
                hit = v > thresholds[c] and v >= prev and v > nxt
            else:
                hit = (
                    abs(v) > thresholds[c] and abs(v) >= abs(prev) and abs(v) > abs(nxt)
                )
            if hit and i - last > refractory:
                out.append((i, c, v))
                last = i
    return out
