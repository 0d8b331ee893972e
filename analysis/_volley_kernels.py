"""Numba kernels of the volley search (volleys.py, propagation.py).

Each replaces numpy code that ran once per channel or per candidate in Python,
where the calls cost more than the arithmetic (epochs are a few thousand rows
of a few channels). Every sum is formed in the order numpy forms it, so the
results are numpy's to the bit: ``_pairwise_sum`` for ``.sum()``/``.mean()``,
BLAS ``ddot`` (numba's ``np.dot``, the same OpenBLAS routine) for ``@`` and
``np.correlate`` of long kernels, and a plain running sum where numpy runs
one (``np.correlate`` with a kernel of 11 samples or fewer). Plain numpy
references: tests/analysis/_reference.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from analysis._artifact_kernels import spike_windows, theil_sen_inliers
from analysis._kernels import _pairwise_sum, _sosfilt_direction

LOCAL_SNR_MIN = 5.0  # volleys.LOCAL_SNR_MIN (kept equal by a test)
ARTIFACT_RATIO = 4.0  # volleys.ARTIFACT_RATIO


@njit(cache=True, nogil=True)
def _correlate_valid(seg, template, out):
    """``np.correlate(seg, template, "valid")`` into ``out`` as numpy computes
    it: a running sum from 0 for a kernel of 11 samples or fewer (numpy's
    ``small_correlate``), BLAS ``ddot`` per lag above that."""
    m = template.size
    for i in range(out.size):
        if m <= 11:
            s = 0.0
            for j in range(m):
                s += seg[i + j] * template[j]
            out[i] = s
        else:
            out[i] = np.dot(seg[i : i + m], template)


@njit(cache=True, nogil=True)
def align_to_reference(filtered, centroids, chans, ref, half, look, out):
    """``volleys._align_to_reference`` into ``out`` (a copy of ``centroids``
    refined by cross-correlation with channel ``ref``'s spike; ``half``,
    ``look``: the template's half width and the search, rows)."""
    n = filtered.shape[0]
    for c in range(centroids.size):
        out[c] = centroids[c]
    r0 = round(centroids[ref])
    if r0 - half < 0 or r0 + half + 1 > n:
        return
    m = 2 * half + 1
    template = np.empty(m)
    for j in range(m):
        template[j] = filtered[r0 - half + j, ref]
    seg = np.empty(m + 2 * look)
    xc = np.empty(2 * look + 1)
    for q in range(chans.size):
        c = chans[q]
        if c == ref:
            continue
        guess = centroids[c] - centroids[ref]
        centre = r0 + round(guess)
        a = centre - half - look
        b = centre + half + look + 1
        if a < 0 or b > n:
            continue
        for j in range(b - a):
            seg[j] = filtered[a + j, c]
        _correlate_valid(seg, template, xc)
        sign = 1.0 if xc[look] >= 0 else -1.0
        # np.argmax of sign * xc: the first largest (a NaN first of all)
        k = 0
        for i in range(xc.size):
            if np.isnan(sign * xc[k]):
                break
            if np.isnan(sign * xc[i]) or sign * xc[i] > sign * xc[k]:
                k = i
        # volleys._parabolic on sign * xc
        p = float(k)
        if 0 < k < xc.size - 1:
            y0, y1, y2 = sign * xc[k - 1], sign * xc[k], sign * xc[k + 1]
            denom = y0 - 2 * y1 + y2
            if denom != 0:
                p = k + 0.5 * (y0 - y2) / denom
        lag = a + p + half - r0
        out[c] = centroids[ref] + lag


@njit(cache=True, nogil=True)
def time_arrivals(
    filtered, noise, blanked, artifact, has_artifact, rows, chans, half, bridge,
    near, far, edge_margin, edge_rows, t_half, look, times, amps, snr, polarity,
    clean,
):  # fmt: skip
    """``volleys._time_arrivals`` into ``times``, ``amps``, ``snr``,
    ``polarity`` and ``clean`` (whole rows, one per channel; written for
    every channel), ``rows`` clipped to the epoch: ``spike_windows``, each
    spike's energy centroid, the clean tests, the reference channel and
    ``align_to_reference``."""
    n_ch = filtered.shape[1]
    centroids = np.empty(n_ch)
    for c in range(n_ch):
        centroids[c] = np.nan
        amps[c] = np.nan
        snr[c] = np.nan
        polarity[c] = 0.0
        clean[c] = False
    stats = np.empty((chans.size, 13))
    # each row clipped to the epoch (as np.clip)
    inside = np.empty(rows.size, dtype=np.int64)
    for c in range(rows.size):
        inside[c] = min(max(rows[c], 0), filtered.shape[0] - 1)
    spike_windows(filtered, noise, blanked, artifact, inside, chans, half, bridge,
                  near, far, stats)  # fmt: skip
    e = np.empty(2 * half + 1)
    w = np.empty(2 * half + 1)
    for i in range(w.size):
        w[i] = float(i)
    for q in range(chans.size):
        c = chans[q]
        lo, left, right = int(stats[q, 0]), int(stats[q, 1]), int(stats[q, 2])
        nz = max(noise[c], 1e-12)
        m = right - left + 1
        for i in range(m):
            y = filtered[lo + left + i, c] / nz
            e[i] = y * y if abs(y) > 3.0 else 0.0
        # lo + left + (arange @ e) / e.sum(), as numpy forms each
        centroids[c] = lo + left + np.dot(w[:m], e[:m]) / _pairwise_sum(e, 0, m)
        amps[c] = stats[q, 4]
        snr[c] = stats[q, 5]
        polarity[c] = stats[q, 6]
        ok = stats[q, 5] >= LOCAL_SNR_MIN * stats[q, 7] and not stats[q, 8]
        if has_artifact:
            big, peak = stats[q, 9], stats[q, 10]
            ok = ok and big <= ARTIFACT_RATIO * peak
            on_edge = False
            for edge in edge_rows:
                if lo + left - edge_margin <= edge <= lo + right + edge_margin:
                    on_edge = True
            ok = ok and not (on_edge and big > peak)
        clean[c] = ok
    for c in range(n_ch):
        times[c] = centroids[c]
    if chans.size == 0:
        return
    any_clean = False
    for q in range(chans.size):
        any_clean = any_clean or clean[chans[q]]
    # np.nanargmax over the clean channels (all when none is clean)
    ref = -1
    best = -np.inf
    for q in range(chans.size):
        c = chans[q]
        if any_clean and not clean[c]:
            continue
        v = -np.inf if np.isnan(snr[c]) else snr[c]
        if ref < 0 or v > best:
            ref, best = c, v
    all_nan = True
    for q in range(chans.size):
        c = chans[q]
        if (clean[c] or not any_clean) and not np.isnan(snr[c]):
            all_nan = False
    if all_nan:
        raise ValueError("All-NaN slice encountered")
    sign = polarity[ref]
    for c in range(n_ch):
        polarity[c] = polarity[c] * sign
    align_to_reference(filtered, centroids, chans, ref, t_half, look, times)


# numpy's error model: a division by zero gives inf or NaN, as in the numpy
# code this replaces, instead of raising
@njit(cache=True, nogil=True, error_model="numpy")
def fit_arrivals(
    times, clean, x, zero_row, fs_hz, tolerance, need, latency, keep, fit,
    scalars, amps, snr, polarity,
):  # fmt: skip
    """What ``volleys._fit_line`` does with the arrival times, numpy's sums
    to the bit. Writes ``latency`` (s, NaN off the Theil–Sen line), ``keep``,
    ``fit`` and ``scalars`` = (slope, t0, SE of the slope, SD of the
    residuals, 1 if enough arrivals were clean), and sets ``amps`` and
    ``snr`` to NaN and ``polarity`` to 0 off the line (as ``np.where``,
    when the line is kept); returns 0 when the line
    fails (fewer than ``need`` kept, or no positive slope), else 1. The
    velocity (1 / slope), its range and its SE (SE / slope**2, Python's
    power) are left to the caller."""
    n_ch = times.size
    for c in range(n_ch):
        latency[c] = (times[c] - zero_row) / fs_hz
    theil_sen_inliers(x, latency, tolerance, keep)
    n_keep = 0
    n_clean = 0
    for c in range(n_ch):
        if keep[c]:
            n_keep += 1
            if clean[c]:
                n_clean += 1
    if n_keep < need:
        return 0
    enough_clean = n_clean >= need
    m = 0
    xs = np.empty(n_ch)
    ys = np.empty(n_ch)
    for c in range(n_ch):
        fit[c] = keep[c] and clean[c] if enough_clean else keep[c]
        if not keep[c]:
            latency[c] = np.nan
            amps[c] = np.nan
            snr[c] = np.nan
            polarity[c] = 0.0
        if fit[c]:
            xs[m] = x[c]
            ys[m] = latency[c]
            m += 1
    # fit_velocity on the fitted pairs
    if m < 2:
        return 0
    lo, hi = xs[0], xs[0]
    for i in range(m):
        lo = min(lo, xs[i])
        hi = max(hi, xs[i])
    if hi - lo == 0:
        return 0
    xm = _pairwise_sum(xs, 0, m) / m
    ym = _pairwise_sum(ys, 0, m) / m
    work = np.empty(m)
    for i in range(m):
        d = xs[i] - xm
        work[i] = d * d
    sxx = _pairwise_sum(work, 0, m)
    for i in range(m):
        work[i] = (xs[i] - xm) * (ys[i] - ym)
    slope = _pairwise_sum(work, 0, m) / sxx
    t0 = ym - slope * xm
    if slope <= 0:
        return 0
    se_slope = np.nan
    if m > 2:
        for i in range(m):
            work[i] = ys[i] - (t0 + slope * xs[i])
        se_slope = np.sqrt(np.dot(work, work) / (m - 2) / sxx)
    velocity = 1.0 / slope
    # _fit_line's residual SD about the line with that velocity
    for i in range(m):
        r = ys[i] - (t0 + xs[i] / velocity)
        work[i] = r * r
    scalars[0] = slope
    scalars[1] = t0
    scalars[2] = se_slope
    scalars[3] = np.sqrt(_pairwise_sum(work, 0, m) / max(m - 2, 1))
    scalars[4] = 1.0 if enough_clean else 0.0
    return 1


@njit(cache=True, nogil=True)
def _first_at_least(values, bound):
    """The first index of the non-decreasing ``values`` at or above
    ``bound`` (``values.size`` if none): ``np.searchsorted(values, bound)``."""
    lo, hi = 0, values.size
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < bound:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def candidate_lines(
    env, peaked, scaled, slowness, t0, threshold, cap, need, clear,
    distinct_ratio, tries, rows, on, velocity,
):  # fmt: skip
    """``volleys.find_volleys``'s step 1: up to ``tries`` searches of every
    line (``line_support``'s sums), each taking the line with the most
    channels above ``threshold`` (then the largest capped sum: the first in
    C order, as ``np.argmax``) and clearing its channels ±``clear`` rows in
    ``env`` and ``peaked`` (both changed in place); a line within
    ``distinct_ratio`` of the velocity of one kept is not kept. Writes the
    kept lines' ``rows``, ``on`` and ``velocity`` (one row each); returns
    how many. Stops when no line reaches ``need`` channels.

    Cheaper than ``line_support`` per search, same choice: each line's row
    per channel is computed once (as there) and its support counted; a
    cleared spike only lowers the counts of the lines through it; the
    capped sums are formed (in channel order, as there) only for the lines
    of the most support, the only ones the choice looks at."""
    n, n_ch = env.shape
    n_s, n_t = slowness.shape[0], t0.shape[0]
    line_rows = np.empty((n_s, n_ch, n_t), dtype=np.int64)
    # Rows off the epoch (NaN and beyond int64 too, which line_support's
    # int() turns negative) are stored as -1 or n: both count nothing.
    for i in range(n_s):
        for c in range(n_ch):
            step = scaled[c] * slowness[i]
            for j in range(n_t):
                v = np.floor(t0[j] + step + 0.5)
                line_rows[i, c, j] = int(v) if 0.0 <= v < n else (n if v >= n else -1)
    # each channel's hits, rows -1..n (bytes, written channel by channel:
    # an eighth of the memory of int64 in row order, a fifth of the time)
    hits = np.zeros((n_ch, n + 2), dtype=np.uint8)
    for c in range(n_ch):
        for r in range(n):
            hits[c, r + 1] = env[r, c] >= threshold
    # With t0 rising, each line's rows rise with j (floor is monotone), so
    # the lines through a span of rows are a run of j: found by bisection
    # when a spike is cleared, instead of a scan of every line.
    rising = True
    for j in range(1, n_t):
        if not t0[j] >= t0[j - 1]:
            rising = False
    support = np.zeros((n_s, n_t), dtype=np.int64)
    for i in range(n_s):
        for c in range(n_ch):
            for j in range(n_t):
                support[i, j] += hits[c, line_rows[i, c, j] + 1]
    kept = 0
    for _ in range(tries):
        best_support = -1
        for i in range(n_s):
            for j in range(n_t):
                best_support = max(best_support, support[i, j])
        if best_support < need:
            break
        # np.argmax of the capped sums over the lines of the most support:
        # the first largest (the first NaN before any number)
        best_score = 0.0
        bi = -1
        bj = -1
        for i in range(n_s):
            for j in range(n_t):
                if support[i, j] != best_support:
                    continue
                total = 0.0
                for c in range(n_ch):
                    row = line_rows[i, c, j]
                    if row < 0 or row >= n:
                        continue
                    if env[row, c] >= threshold:
                        total += min(peaked[row, c], cap)
                if bi < 0:
                    best_score, bi, bj = total, i, j
                elif not np.isnan(best_score) and (
                    np.isnan(total) or total > best_score
                ):
                    best_score, bi, bj = total, i, j
        v = 1.0 / slowness[bi]
        for c in range(n_ch):
            r = int(np.floor(t0[bj] + scaled[c] * slowness[bi] + 0.5))
            rows[kept, c] = r
            on[kept, c] = 0 <= r < n and env[r, c] >= threshold
        for c in range(n_ch):
            if not on[kept, c]:
                continue
            first = max(0, rows[kept, c] - clear)
            stop = min(n, rows[kept, c] + clear + 1)
            # the lines through the cleared rows lose this channel's support
            # (none when a cleared row still counts: threshold <= 0)
            if not 0.0 >= threshold:
                for i in range(n_s):
                    j0, j1 = 0, n_t
                    if rising:
                        j0 = _first_at_least(line_rows[i, c], first)
                        j1 = _first_at_least(line_rows[i, c], stop)
                    for j in range(j0, j1):
                        row = line_rows[i, c, j]
                        if first <= row < stop and env[row, c] >= threshold:
                            support[i, j] -= 1
            for k in range(first, stop):
                env[k, c] = 0.0
                peaked[k, c] = 0.0
        distinct = True
        for p in range(kept):
            u = velocity[p]
            if max(v, u) / min(v, u) < distinct_ratio:
                distinct = False
        if distinct:
            velocity[kept] = v
            kept += 1
    return kept


@njit(cache=True, nogil=True)
def filtfilt_ext(sos, zi0, x, padlen):
    """``filters.filtfilt`` of ``x`` (n, channels) with its odd extension of
    ``padlen`` rows each side (as ``scipy.signal.sosfiltfilt``); returns the
    extended, filtered array (the caller cuts the extension off). ``zi0``:
    the filter's state for a unit step (``signal.sosfilt_zi``)."""
    n, n_ch = x.shape
    n_sections = sos.shape[0]
    ext = np.empty((n + 2 * padlen, n_ch))
    for k in range(padlen):
        for c in range(n_ch):
            ext[k, c] = 2 * x[0, c] - x[padlen - k, c]
            ext[padlen + n + k, c] = 2 * x[n - 1, c] - x[n - 2 - k, c]
    for i in range(n):
        for c in range(n_ch):
            ext[padlen + i, c] = x[i, c]
    zi = np.empty((n_sections, n_ch, 2))
    for s in range(n_sections):
        for c in range(n_ch):
            for k in range(2):
                zi[s, c, k] = zi0[s, k] * ext[0, c]
    # The band-pass's two sections in one sweep where they can be (four
    # channels at a time): the same operations, ~10 % faster.
    fused = n_sections == 2 and n_ch % 4 == 0
    if fused:
        _two_sections(sos, ext, zi, False)
    else:
        _sosfilt_direction(sos, ext, zi, False)
    last = ext.shape[0] - 1
    for s in range(n_sections):
        for c in range(n_ch):
            for k in range(2):
                zi[s, c, k] = zi0[s, k] * ext[last, c]
    if fused:
        _two_sections(sos, ext, zi, True)
    else:
        _sosfilt_direction(sos, ext, zi, True)
    return ext


@njit(cache=True, nogil=True)
def _two_sections(sos, x, zi, backward):
    """``_kernels._sosfilt_direction`` of a two-section cascade with a
    multiple of four channels: both sections in one sweep over the rows,
    the second taking the first's output of the same row, each expression
    as there (so the same values to the bit)."""
    n, n_ch = x.shape
    b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    c0, c1, c2, d1, d2 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    for g in range(0, n_ch, 4):
        p0, p1, p2, p3 = zi[0, g, 0], zi[0, g + 1, 0], zi[0, g + 2, 0], zi[0, g + 3, 0]
        q0, q1, q2, q3 = zi[0, g, 1], zi[0, g + 1, 1], zi[0, g + 2, 1], zi[0, g + 3, 1]
        r0, r1, r2, r3 = zi[1, g, 0], zi[1, g + 1, 0], zi[1, g + 2, 0], zi[1, g + 3, 0]
        s0, s1, s2, s3 = zi[1, g, 1], zi[1, g + 1, 1], zi[1, g + 2, 1], zi[1, g + 3, 1]
        for k in range(n):
            i = n - 1 - k if backward else k
            x0, x1, x2, x3 = x[i, g], x[i, g + 1], x[i, g + 2], x[i, g + 3]
            # section 0
            y0 = b0 * x0 + p0
            y1 = b0 * x1 + p1
            y2 = b0 * x2 + p2
            y3 = b0 * x3 + p3
            p0 = b1 * x0 - a1 * y0 + q0
            p1 = b1 * x1 - a1 * y1 + q1
            p2 = b1 * x2 - a1 * y2 + q2
            p3 = b1 * x3 - a1 * y3 + q3
            q0 = b2 * x0 - a2 * y0
            q1 = b2 * x1 - a2 * y1
            q2 = b2 * x2 - a2 * y2
            q3 = b2 * x3 - a2 * y3
            # section 1, on section 0's output
            w0 = c0 * y0 + r0
            w1 = c0 * y1 + r1
            w2 = c0 * y2 + r2
            w3 = c0 * y3 + r3
            r0 = c1 * y0 - d1 * w0 + s0
            r1 = c1 * y1 - d1 * w1 + s1
            r2 = c1 * y2 - d1 * w2 + s2
            r3 = c1 * y3 - d1 * w3 + s3
            s0 = c2 * y0 - d2 * w0
            s1 = c2 * y1 - d2 * w1
            s2 = c2 * y2 - d2 * w2
            s3 = c2 * y3 - d2 * w3
            x[i, g], x[i, g + 1], x[i, g + 2], x[i, g + 3] = w0, w1, w2, w3
        zi[0, g, 0], zi[0, g + 1, 0], zi[0, g + 2, 0], zi[0, g + 3, 0] = p0, p1, p2, p3
        zi[0, g, 1], zi[0, g + 1, 1], zi[0, g + 2, 1], zi[0, g + 3, 1] = q0, q1, q2, q3
        zi[1, g, 0], zi[1, g + 1, 0], zi[1, g + 2, 0], zi[1, g + 3, 0] = r0, r1, r2, r3
        zi[1, g, 1], zi[1, g + 1, 1], zi[1, g + 2, 1], zi[1, g + 3, 1] = s0, s1, s2, s3


@njit(cache=True, nogil=True)
def widen_rows(mask, spread, out):
    """``out[r, c]``: any of ``mask[r - spread : r + spread + 1, c]``. One
    sweep per column: the last row the set rows seen so far reach (a set
    row ``spread`` ahead is seen at ``r``)."""
    n, n_ch = mask.shape
    for c in range(n_ch):
        reach = -1
        for r in range(min(spread, n)):
            if mask[r, c]:
                reach = r + spread
        for r in range(n):
            ahead = r + spread
            if ahead < n and mask[ahead, c]:
                reach = ahead + spread
            out[r, c] = reach >= r


@njit(cache=True, nogil=True)
def count_columns(mask, out):
    """``out[c]``: how many rows of column ``c`` of ``mask`` are set
    (``mask.sum(axis=0)``, without numpy's cast of every bool; summed
    without a branch)."""
    n, n_ch = mask.shape
    for c in range(n_ch):
        k = 0
        for r in range(n):
            k += mask[r, c]
        out[c] = k


@njit(cache=True, nogil=True)
def search_envelope(filtered, noise, blanked, a, b, lo, hi, half, env, peaked):
    """``_artifact_kernels.envelope_into`` of rows ``a``..``b`` into ``env``
    and ``peaked`` (whole arrays, written here: 0 outside rows ``lo``..``hi``
    and outside ``a``..``b``), as ``find_volleys`` used it: the same running
    mean (scipy's running sum, from row ``a``), and the running maximum from
    block maxima instead of a scan of every window (the same maxima: NaN
    never wins, 0 is the floor)."""
    n, n_ch = filtered.shape
    length = b - a
    first = max(lo, a) - a  # the outputs kept: rows lo..hi within a..b
    stop = min(hi, b) - a
    # 0 where nothing is written below (a + first .. a + stop is)
    kept_from, kept_to = (a + first, a + stop) if length > 0 else (n, n)
    for r in range(n):
        if kept_from <= r < kept_to:
            continue
        for c in range(n_ch):
            env[r, c] = 0.0
            peaked[r, c] = 0.0
    if length <= 0:
        return
    size = 2 * half + 1
    m = length + 2 * half
    ext = np.zeros(m)
    grow = np.empty(m)
    fall = np.empty(m)
    for c in range(n_ch):
        scale = max(noise[c], 1e-12)
        for i in range(length):
            r = a + i
            ext[half + i] = 0.0 if blanked[r, c] else abs(filtered[r, c]) / scale
        # running maximum of ext[i : i + size] (van Herk): maxima from each
        # block's start (grow) and to its end (fall); a window spans at most
        # two blocks. NaN never wins a window there: it counts as the floor.
        # Block by block (no remainder per sample: a division each).
        for s in range(0, m, size):
            e = min(s + size, m)
            top = 0.0
            for j in range(s, e):
                top = max(top, ext[j] if ext[j] > 0.0 else 0.0)
                grow[j] = top
            top = 0.0
            for j in range(e - 1, s - 1, -1):
                top = max(top, ext[j] if ext[j] > 0.0 else 0.0)
                fall[j] = top
        for i in range(first, stop):
            env[a + i, c] = max(fall[i], grow[i + size - 1])
        tmp = 0.0
        for j in range(size):
            tmp += ext[j]
        if first <= 0 < stop:
            peaked[a, c] = tmp / size
        for i in range(1, length):
            tmp += ext[i + size - 1] - ext[i - 1]
            if first <= i < stop:
                peaked[a + i, c] = tmp / size


@njit(cache=True, nogil=True)
def residual_energy(x, fitted):
    """``np.sum((x - fitted) ** 2)`` of two C-ordered (n, channels) arrays,
    summed as numpy sums the flattened squares (pairwise), so to the bit."""
    n, n_ch = x.shape
    squares = np.empty(n * n_ch)
    for r in range(n):
        for c in range(n_ch):
            d = x[r, c] - fitted[r, c]
            squares[r * n_ch + c] = d * d
    return _pairwise_sum(squares, 0, n * n_ch)
