"""Numba kernels of the analysis. Arrays and scalars only; no allocation in loops.

Each has a plain numpy/scipy reference in tests/analysis/_reference.py that it
must match (tests/analysis/test_kernels.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _sosfilt_direction(sos, x, zi, backward):
    """Cascaded biquads (direct form II transposed), in place along axis 0.

    ``x``: float64 ``(n_samples, n_channels)``, C order; ``zi``: float64
    ``(n_sections, n_channels, 2)`` state, updated in place (so chunks chain).
    Same arithmetic as ``scipy.signal.sosfilt``; ``backward`` runs from the last
    sample to the first (exactly as filtering the reversed array, without
    copying it). Channels are the inner loop: rows are contiguous in memory,
    which is 2–3× faster than channel by channel.
    """
    n_sections = sos.shape[0]
    n, n_ch = x.shape
    z0 = np.empty(n_ch)
    z1 = np.empty(n_ch)
    for s in range(n_sections):
        b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
        a1, a2 = sos[s, 4], sos[s, 5]
        for c in range(n_ch):
            z0[c] = zi[s, c, 0]
            z1[c] = zi[s, c, 1]
        for k in range(n):
            i = n - 1 - k if backward else k
            for c in range(n_ch):
                xi = x[i, c]
                yi = b0 * xi + z0[c]
                z0[c] = b1 * xi - a1 * yi + z1[c]
                z1[c] = b2 * xi - a2 * yi
                x[i, c] = yi
        for c in range(n_ch):
            zi[s, c, 0] = z0[c]
            zi[s, c, 1] = z1[c]


@njit(cache=True, nogil=True)
def sosfilt_inplace(sos, x, zi):
    """Causal biquad cascade along axis 0, in place (see ``_sosfilt_direction``)."""
    _sosfilt_direction(sos, x, zi, False)


@njit(cache=True, nogil=True)
def sosfilt_backward_inplace(sos, x, zi):
    """The same filter run from the last sample to the first, in place."""
    _sosfilt_direction(sos, x, zi, True)


@njit(cache=True, nogil=True)
def detect_peaks(
    traces,
    thresholds,
    sign,
    refractory,
    start,
    stop,
    last,
    out_sample,
    out_channel,
    out_amp,
):
    """Threshold-crossing peaks per channel, at most one per refractory period.

    A peak at sample i of channel c is a local extremum (in the direction
    ``sign``: -1 negative, +1 positive, 0 either) whose magnitude exceeds
    ``thresholds[c]``; after a peak, the next ``refractory`` samples are
    skipped. Only peaks with ``start <= i < stop`` are reported (chunk
    margins). ``last[c]`` is the index of channel c's previous peak (may be
    negative: in an earlier chunk); it is updated, so refractoriness carries
    across chunks. Returns the number of peaks written to the out arrays.
    """
    n, n_ch = traces.shape
    count = 0
    capacity = out_sample.shape[0]
    for c in range(n_ch):
        thr = thresholds[c]
        i = max(1, start)
        previous = last[c]
        while i < min(stop, n - 1):
            v = traces[i, c]
            mag = -v if sign < 0 else (v if sign > 0 else abs(v))
            if mag > thr and i - previous > refractory:
                prev = traces[i - 1, c]
                nxt = traces[i + 1, c]
                if sign < 0:
                    is_peak = v <= prev and v < nxt
                elif sign > 0:
                    is_peak = v >= prev and v > nxt
                else:
                    is_peak = abs(v) >= abs(prev) and abs(v) > abs(nxt)
                if is_peak:
                    if count < capacity:
                        out_sample[count] = i
                        out_channel[count] = c
                        out_amp[count] = v
                    count += 1
                    previous = i
            i += 1
        last[c] = previous
    return count
