"""Slow, obvious references the Numba kernels must match."""

from __future__ import annotations

import math

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


def line_support_reference(
    envelope, peakedness, positions, slowness, t0, threshold, cap
):
    """Plain-Python delay-and-sum: (support, score), each (n_slowness, n_t0).

    For every line (slowness i, start j) each channel's arrival row is
    ``t0[j] + positions[c] * slowness[i]`` rounded half up; rows off the epoch
    are skipped. Support counts the channels whose envelope there is at least
    ``threshold``; score sums their peakedness, each capped at ``cap``, in
    channel order.
    """
    n, n_ch = envelope.shape
    support = np.zeros((len(slowness), len(t0)), dtype=np.int64)
    score = np.zeros((len(slowness), len(t0)))
    for i, s in enumerate(slowness):
        for j, start in enumerate(t0):
            count, total = 0, 0.0
            for c in range(n_ch):
                row = math.floor(float(start) + float(positions[c]) * float(s) + 0.5)
                if 0 <= row < n and envelope[row, c] >= threshold:
                    count += 1
                    total += min(float(peakedness[row, c]), cap)
            support[i, j] = count
            score[i, j] = total
    return support, score
