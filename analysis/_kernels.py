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
    which is 2–3× faster than channel by channel; four channels at a time
    are held in local variables (the compiler keeps them in registers and
    runs the four recurrences side by side: ~1.6× faster again), the rest
    through the state arrays.
    """
    n_sections = sos.shape[0]
    n, n_ch = x.shape
    z0 = np.empty(n_ch)
    z1 = np.empty(n_ch)
    quads = n_ch - n_ch % 4
    for s in range(n_sections):
        b0, b1, b2 = sos[s, 0], sos[s, 1], sos[s, 2]
        a1, a2 = sos[s, 4], sos[s, 5]
        for g in range(0, quads, 4):
            p0, p1, p2, p3 = (
                zi[s, g, 0],
                zi[s, g + 1, 0],
                zi[s, g + 2, 0],
                zi[s, g + 3, 0],
            )
            q0, q1, q2, q3 = (
                zi[s, g, 1],
                zi[s, g + 1, 1],
                zi[s, g + 2, 1],
                zi[s, g + 3, 1],
            )
            for k in range(n):
                i = n - 1 - k if backward else k
                x0, x1, x2, x3 = x[i, g], x[i, g + 1], x[i, g + 2], x[i, g + 3]
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
                x[i, g], x[i, g + 1], x[i, g + 2], x[i, g + 3] = y0, y1, y2, y3
            zi[s, g, 0], zi[s, g + 1, 0], zi[s, g + 2, 0], zi[s, g + 3, 0] = (
                p0,
                p1,
                p2,
                p3,
            )
            zi[s, g, 1], zi[s, g + 1, 1], zi[s, g + 2, 1], zi[s, g + 3, 1] = (
                q0,
                q1,
                q2,
                q3,
            )
        if quads == n_ch:
            continue
        for c in range(quads, n_ch):
            z0[c] = zi[s, c, 0]
            z1[c] = zi[s, c, 1]
        for k in range(n):
            i = n - 1 - k if backward else k
            for c in range(quads, n_ch):
                xi = x[i, c]
                yi = b0 * xi + z0[c]
                z0[c] = b1 * xi - a1 * yi + z1[c]
                z1[c] = b2 * xi - a2 * yi
                x[i, c] = yi
        for c in range(quads, n_ch):
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


@njit(cache=True, nogil=True)
def line_support(
    envelope, peakedness, positions, slowness, t0, threshold, cap, support, score
):
    """Delay-and-sum of spike envelopes along every propagation line.

    ``envelope``: ``(n_samples, n_channels)``, each channel's widened spike
    envelope in noise SDs (0 where blanked); ``peakedness``: the same signal
    smoothed instead of widened, so it peaks at a spike's centre (ties between
    lines through the flat top of a widened envelope go to the line through
    the centres). ``positions``: each channel's distance from the stimulation
    site, scaled so that ``t0[j] + positions[c] * slowness[i]`` is a row.
    For every line (slowness i, start j) the arrival row at channel c is that
    sum, rounded; ``support[i, j]`` counts the channels whose envelope there is
    at least ``threshold``, and ``score[i, j]`` sums their ``peakedness``, each
    capped at ``cap`` (so one huge residual cannot outvote the others).
    """
    n, n_ch = envelope.shape
    for i in range(slowness.shape[0]):
        for j in range(t0.shape[0]):
            count = 0
            total = 0.0
            for c in range(n_ch):
                row = int(np.floor(t0[j] + positions[c] * slowness[i] + 0.5))
                if row < 0 or row >= n:
                    continue
                if envelope[row, c] >= threshold:
                    count += 1
                    total += min(peakedness[row, c], cap)
            support[i, j] = count
            score[i, j] = total


@njit(cache=True, nogil=True)
def _led_mismatch(obs, exp, j, t, cost):
    """Emission cost of frame j shown as trigger t (0 when either bit is unknown)."""
    o = obs[j]
    x = exp[t]
    if o >= 0 and x >= 0 and o != x:
        return cost
    return 0.0


@njit(cache=True, nogil=True)
def _forward_row(obs, exp, repeat, lo, hi, j, mismatch, gap, stay, prev, prefix, cur):
    """Row ``j`` of the forward table (``cur``) from row ``j - 1`` (``prev``).

    Rows are relative to their frame's band start; ``prefix`` is scratch.
    """
    plo = lo[j - 1]
    pn = hi[j - 1] - plo
    running = np.inf
    for k in range(pn):
        v = prev[k]
        if v < running:
            running = v
        prefix[k] = running
    for t in range(lo[j], hi[j]):
        k = t - plo
        same = prev[k] if 0 <= k < pn else np.inf
        if repeat[j]:
            best = same
        else:
            best = same + stay
            if 0 <= k - 1 < pn:
                diag = prev[k - 1]
                if diag < best:
                    best = diag
            if k - 2 >= 0 and pn > 0:
                jump = prefix[min(k - 2, pn - 1)] + gap
                if jump < best:
                    best = jump
        cur[t - lo[j]] = best + _led_mismatch(obs, exp, j, t, mismatch)


@njit(cache=True, nogil=True)
def _backward_row(
    obs, exp, repeat, lo, hi, j, mismatch, gap, stay, nxt, head, suffix, after
):
    """``after`` of frame ``j`` (least cost of frames ``j + 1..``, frame ``j`` at
    each trigger of its band) from that of frame ``j + 1`` (``nxt``).

    ``head`` and ``suffix`` are scratch.
    """
    nlo = lo[j + 1]
    nn = hi[j + 1] - nlo
    for k in range(nn):
        head[k] = _led_mismatch(obs, exp, j + 1, nlo + k, mismatch) + nxt[k]
    suffix[nn] = np.inf
    for k in range(nn - 1, -1, -1):
        suffix[k] = min(suffix[k + 1], head[k])
    for t in range(lo[j], hi[j]):
        k = t - nlo
        same = head[k] if 0 <= k < nn else np.inf
        if repeat[j + 1]:
            best = same
        else:
            best = same + stay
            if 0 <= k + 1 < nn:
                diag = head[k + 1]
                if diag < best:
                    best = diag
            if k + 2 < nn:
                jump = suffix[max(k + 2, 0)] + gap
                if jump < best:
                    best = jump
        after[t - lo[j]] = best


@njit(cache=True, nogil=True)
def sync_forward(obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd):
    """Forward pass of the frame-to-trigger alignment (min-cost, monotone paths).

    Frame ``j`` may be assigned a trigger ``t`` in its band ``lo[j] <= t <
    hi[j]``; ``fwd[j, t - lo[j]]`` (float32 ``(n_frames, width)``, written here)
    is the least cost of frames ``0..j`` with frame ``j`` at ``t``. Steps from
    frame ``j - 1`` at ``t'``: ``t = t' + 1`` costs 0, ``t = t'`` (a repeat)
    costs ``stay`` (0 and the only step allowed when ``repeat[j]``), ``t > t' +
    1`` (triggers without a frame) costs ``gap`` whatever its length. Each frame
    adds ``mismatch`` when its bit and the trigger's expected bit are both known
    (0/1, not -1) and differ. The first frame may sit anywhere (a late start).
    """
    n_frames = obs.shape[0]
    width = fwd.shape[1]
    prefix = np.empty(width)
    prev = np.empty(width)
    cur = np.empty(width)
    for k in range(hi[0] - lo[0]):
        cur[k] = _led_mismatch(obs, exp, 0, lo[0] + k, mismatch)
        fwd[0, k] = cur[k]
    for j in range(1, n_frames):
        prev, cur = cur, prev
        _forward_row(
            obs, exp, repeat, lo, hi, j, mismatch, gap, stay, prev, prefix, cur
        )
        for k in range(hi[j] - lo[j]):
            fwd[j, k] = cur[k]


@njit(cache=True, nogil=True)
def sync_marginals(
    obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd, best_t, best_cost, second
):
    """Backward pass: each frame's best trigger and the cost of any other.

    With ``fwd`` from ``sync_forward``, the least cost of a whole path that puts
    frame ``j`` at ``t`` is ``fwd[j, t - lo[j]]`` plus the least cost of frames
    ``j + 1..`` after it. Writes, per frame, the ``t`` where that is least
    (``best_t``, the lowest on a tie), its cost (``best_cost``: the optimum, the
    same for every frame) and the least cost with frame ``j`` anywhere else
    (``second``, ``inf`` if the band holds one trigger). A frame is proven to
    be at ``best_t`` by ``second - best_cost``: every other placement needs that
    much more mismatch, gap or repeat cost.
    """
    n_frames = obs.shape[0]
    width = fwd.shape[1]
    after = np.zeros(width)  # cost of frames j + 1.. given frame j at lo[j] + k
    nxt = np.zeros(width)  # ``after`` of frame j + 1
    head = np.empty(width)
    suffix = np.empty(width + 1)
    for j in range(n_frames - 1, -1, -1):
        if j == n_frames - 1:
            for k in range(hi[j] - lo[j]):
                after[k] = 0.0
        else:
            _backward_row(obs, exp, repeat, lo, hi, j, mismatch, gap, stay, nxt,
                          head, suffix, after)  # fmt: skip
        b_t = -1
        b = np.inf
        s = np.inf
        for k in range(hi[j] - lo[j]):
            v = fwd[j, k] + after[k]
            if v < b:
                s = b
                b = v
                b_t = lo[j] + k
            elif v < s:
                s = v
        best_t[j] = b_t
        best_cost[j] = b
        second[j] = s
        for k in range(hi[j] - lo[j]):
            nxt[k] = after[k]


@njit(cache=True, nogil=True)
def sync_forward_detached(obs, exp, repeat, lo, hi, mismatch, gap, stay, path, bonus,
                          fwd):  # fmt: skip
    """Lower ``fwd`` (from ``sync_forward``) by the prefixes detached from ``path``.

    A prefix is detached from ``path`` (one trigger per frame, -1: none) if
    its first frame lies behind the path's (a lower trigger) and no frame of
    it meets the path (``t == path[j]``). Such a prefix costs ``bonus`` less:
    had the recording begun earlier, the path would have needed an event to
    leave it, which the run's free start spares it. ``fwd[j, k]`` becomes the
    lesser of its own value and the best detached prefix to that cell.
    """
    n_frames = obs.shape[0]
    width = fwd.shape[1]
    prefix = np.empty(width)
    prev = np.empty(width)
    cur = np.empty(width)
    for k in range(hi[0] - lo[0]):
        t = lo[0] + k
        if t < path[0]:
            cur[k] = _led_mismatch(obs, exp, 0, t, mismatch) - bonus
        else:
            cur[k] = np.inf
        if cur[k] < fwd[0, k]:
            fwd[0, k] = cur[k]
    for j in range(1, n_frames):
        prev, cur = cur, prev
        _forward_row(
            obs, exp, repeat, lo, hi, j, mismatch, gap, stay, prev, prefix, cur
        )
        for k in range(hi[j] - lo[j]):
            if lo[j] + k == path[j]:
                cur[k] = np.inf
            elif cur[k] < fwd[j, k]:
                fwd[j, k] = cur[k]


@njit(cache=True, nogil=True)
def sync_rival(obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd, path, bonus,
               rival):  # fmt: skip
    """Per frame, the least cost of a whole path that puts it off ``path``.

    ``fwd``: from ``sync_forward``, lowered by ``sync_forward_detached``. A
    suffix detached from ``path`` (no frame after ``j`` meets it, and its
    last frame lies ahead of the path's) costs ``bonus`` less: had the
    recording gone on, the path would have needed an event to catch up, which
    the run's free end spares it. ``rival[j]``: the least over triggers ``t !=
    path[j]`` of the prefix to ``(j, t)`` plus the better of the ordinary and
    the detached suffix (``inf`` if the band holds no other trigger).
    """
    n_frames = obs.shape[0]
    width = fwd.shape[1]
    after = np.zeros(width)
    nxt = np.zeros(width)
    loose = np.zeros(width)  # ``after`` of the detached suffixes
    loose_nxt = np.zeros(width)
    head = np.empty(width)
    suffix = np.empty(width + 1)
    for j in range(n_frames - 1, -1, -1):
        if j == n_frames - 1:
            for k in range(hi[j] - lo[j]):
                after[k] = 0.0
                loose[k] = -bonus if lo[j] + k > path[j] else np.inf
        else:
            _backward_row(obs, exp, repeat, lo, hi, j, mismatch, gap, stay, nxt,
                          head, suffix, after)  # fmt: skip
            nlo = lo[j + 1]
            for k in range(hi[j + 1] - nlo):
                if nlo + k == path[j + 1]:
                    loose_nxt[k] = np.inf  # meets the path: not detached
            _backward_row(obs, exp, repeat, lo, hi, j, mismatch, gap, stay,
                          loose_nxt, head, suffix, loose)  # fmt: skip
        r = np.inf
        for k in range(hi[j] - lo[j]):
            if lo[j] + k != path[j]:
                v = fwd[j, k] + min(after[k], loose[k])
                if v < r:
                    r = v
        rival[j] = r
        for k in range(hi[j] - lo[j]):
            nxt[k] = after[k]
            loose_nxt[k] = loose[k]


@njit(cache=True, nogil=True)
def _ranks_of_row(codes, n_distinct, drawn, count, out):
    """Average ranks of one resample (``drawn``: the values' indices) into
    ``out``; ``count``: scratch of ``n_distinct + 1``."""
    for v in range(n_distinct + 1):
        count[v] = 0.0
    for j in range(drawn.size):
        count[codes[drawn[j]] + 1] += 1.0
    # count[v] becomes the number of values below distinct value v
    for v in range(1, n_distinct + 1):
        count[v] += count[v - 1]
    for j in range(drawn.size):
        v = codes[drawn[j]]
        out[j] = count[v] + 0.5 * (count[v + 1] - count[v] + 1.0)


@njit(cache=True, nogil=True)
def resampled_ranks(codes, n_distinct, idx, out):
    """Average ranks (1-based, ties averaged) within each resample of one sample.

    ``codes``: each value's rank among the sample's distinct values (0 for the
    smallest, ``n_distinct - 1`` for the largest, equal values equal); ``idx``:
    int ``(m, k)``, each row the values drawn. Row r of ``out`` is
    ``scipy.stats.rankdata(values[idx[r]])``: the values below a distinct value
    are counted, not sorted (a value drawn c times after s smaller ones ranks
    s + (c + 1) / 2, a whole or half number, exact in float64).
    """
    count = np.zeros(n_distinct + 1)
    for r in range(idx.shape[0]):
        _ranks_of_row(codes, n_distinct, idx[r], count, out[r])


@njit(cache=True, nogil=True)
def _block_sum(a, start, n):
    """The sum of at most 128 contiguous float64 as numpy adds them: eight
    running sums."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = start + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def _pairwise_sum(a, start, n):
    """``a[start:start + n].sum()`` exactly as numpy adds a contiguous float64
    array (pairwise: eight running sums per block of up to 128; above that the
    two halves, split at a multiple of 8, summed apart and added), so a
    kernel's sums equal the numpy code's bit for bit. The halving runs on an
    explicit stack (a recursive kernel loaded from numba's cache crashes)."""
    if n <= 128:
        return _block_sum(a, start, n)
    depth = 64
    s_start = np.empty(depth, dtype=np.int64)
    s_n = np.empty(depth, dtype=np.int64)
    s_left = np.empty(depth)
    s_stage = np.zeros(depth, dtype=np.int64)  # 0 new, 1 left done
    top = 0
    s_start[0], s_n[0], s_stage[0] = start, n, 0
    while True:
        if s_n[top] <= 128:
            value = _block_sum(a, s_start[top], s_n[top])
            top -= 1
            # hand the value up: a left half waits for its right, a right
            # half completes its parent (and so on up)
            while top >= 0 and s_stage[top] == 1:
                value = s_left[top] + value
                top -= 1
            if top < 0:
                return value
            # s_stage[top] == 2: the left half of ``top`` just finished
            s_left[top] = value
            s_stage[top] = 1
            half = s_n[top] // 2
            half -= half % 8
            top += 1
            s_start[top] = s_start[top - 1] + half
            s_n[top] = s_n[top - 1] - half
            s_stage[top] = 0
        else:
            half = s_n[top] // 2
            half -= half % 8
            s_stage[top] = 2  # waiting for its left half
            top += 1
            s_start[top] = s_start[top - 1]
            s_n[top] = half
            s_stage[top] = 0


@njit(cache=True, nogil=True)
def displacement_means(pos, rest, columns, out):
    """``out[r]``: the mean of the finite ``pos[r, c] - rest[c]`` over the
    ``columns`` c (NaN where none), summed left to right as ``np.cumsum`` of
    the values with 0 for the non-finite ones does (so the same bits as
    ``displacement._finite_mean``, which a frame alone, online, also gets)."""
    for r in range(pos.shape[0]):
        total = 0.0
        count = 0
        for j in range(columns.size):
            c = columns[j]
            v = pos[r, c] - rest[c]
            if np.isfinite(v):
                total = v if j == 0 else total + v
                count += 1
            elif j > 0:
                total = total + 0.0  # (as the running sum does: -0.0 becomes 0.0)
        out[r] = total / count if count > 0 else np.nan


@njit(cache=True, nogil=True)
def measure_motion(
    y, t, onsets, ends, baseline_s, threshold, filmed, latency, peak, time_to_peak
):
    """Each window's deviation from the trend before it, for one series.

    For window k: the least-squares line through the finite ``y`` at times
    ``[onsets[k] - baseline_s, onsets[k])``, and the deviation ``|y - line|``
    at the finite ``y`` in ``[onsets[k], ends[k])``: its largest value
    (``peak``, the first on a tie), when it comes (``time_to_peak``, from the
    onset) and when it first exceeds ``threshold`` (``latency``, NaN if
    never). ``filmed[k]`` False (the rest left alone) when the trend has fewer
    than two distinct times or the window no frame. Frames in any order."""
    n = y.size
    tb = np.empty(n)
    yb = np.empty(n)
    work = np.empty(n)
    # Frames in time order (the usual case): each window's rows found by
    # bisection instead of a scan of every frame (the same rows, in the same
    # order, so the same sums).
    in_order = True
    for i in range(1, n):
        if not t[i] >= t[i - 1]:  # (a NaN time: not in order either)
            in_order = False
            break
    for k in range(onsets.size):
        onset = onsets[k]
        start = onset - baseline_s
        lo, hi = 0, n  # the rows that may fall in the trend or the window
        if in_order:
            lo = np.searchsorted(t, start)
            hi = np.searchsorted(t, max(onset, ends[k]))
        m = 0
        distinct = False
        responding = False
        for i in range(lo, hi):
            if not np.isfinite(y[i]):
                continue
            if t[i] >= start and t[i] < onset:
                tb[m] = t[i]
                yb[m] = y[i]
                if m > 0 and t[i] != tb[0]:
                    distinct = True
                m += 1
            elif t[i] >= onset and t[i] < ends[k]:
                responding = True
        filmed[k] = distinct and responding
        if not filmed[k]:
            continue
        tm = _pairwise_sum(tb, 0, m) / m
        ym = _pairwise_sum(yb, 0, m) / m
        for i in range(m):
            work[i] = (tb[i] - tm) * (yb[i] - ym)
        num = _pairwise_sum(work, 0, m)
        for i in range(m):
            d = tb[i] - tm
            work[i] = d * d
        slope = num / _pairwise_sum(work, 0, m)
        intercept = ym - slope * tm
        best = -1.0
        latency[k] = np.nan
        for i in range(lo, hi):
            if not (np.isfinite(y[i]) and t[i] >= onset and t[i] < ends[k]):
                continue
            deviation = abs(y[i] - (intercept + slope * t[i]))
            if deviation > best:
                best = deviation
                time_to_peak[k] = t[i] - onset
            if deviation > threshold and np.isnan(latency[k]):
                latency[k] = t[i] - onset
        peak[k] = best


@njit(cache=True, nogil=True)
def _pearson_row(xs, ys, n, xc, yc, work):
    """Pearson's r of ``xs[:n]`` and ``ys[:n]`` with numpy's own sums (so it
    equals ``correlation._pearson_rows`` bit for bit); NaN where a row is
    constant (``den`` not above ``1e-12 (1 + |num|)``)."""
    mx = _pairwise_sum(xs, 0, n) / n
    my = _pairwise_sum(ys, 0, n) / n
    for j in range(n):
        xc[j] = xs[j] - mx
        yc[j] = ys[j] - my
    for j in range(n):
        work[j] = xc[j] * yc[j]
    num = _pairwise_sum(work, 0, n)
    for j in range(n):
        work[j] = xc[j] * xc[j]
    sxx = _pairwise_sum(work, 0, n)
    for j in range(n):
        work[j] = yc[j] * yc[j]
    den = np.sqrt(sxx * _pairwise_sum(work, 0, n))
    if den > 1e-12 * (1 + abs(num)):
        return num / den
    return np.nan


@njit(cache=True, nogil=True)
def pearson_drawn(x, y, idx, out):
    """Pearson's r of each resample: row r of ``idx`` ``(m, k)`` draws the
    pairs ``(x[idx[r]], y[idx[r]])``; ``out[r]`` equals
    ``correlation._pearson_rows(x[idx], y[idx])[r]`` bit for bit."""
    m, k = idx.shape
    xs, ys = np.empty(k), np.empty(k)
    xc, yc, work = np.empty(k), np.empty(k), np.empty(k)
    lanes = np.empty((3, 8))
    for r in range(m):
        row = idx[r]
        for j in range(k):
            i = row[j]
            xs[j] = x[i]
            ys[j] = y[i]
        if 8 <= k <= 128:
            out[r] = _pearson_row_registers(xs, ys, k)
        elif k < 8:
            out[r] = _pearson_row_block(xs, ys, k, lanes)
        else:
            out[r] = _pearson_row(xs, ys, k, xc, yc, work)


# Up to this many pairs a resample's Spearman sums are whole numbers of
# quarters below 2**53 (k**3 / 4 at most): exact in float64 and in int64 alike.
_EXACT_RANK_SUMS = 100_000


@njit(cache=True, nogil=True)
def spearman_drawn(x_codes, x_distinct, y_codes, y_distinct, idx, out):
    """Spearman's ρ of each resample (ties: average ranks): ``out[r]`` equals
    ``_pearson_row`` of the average ranks of ``resampled_ranks`` for x and y
    (``*_codes``: each pair's value's rank among the sample's ``*_distinct``
    distinct values) bit for bit.

    Ranks are whole or half numbers and their mean is (k + 1) / 2, so every
    sum ``_pearson_row`` forms of them is exact whatever its order: the same
    sums are taken here in integers (of twice the centred ranks), from how
    often each pair was drawn, with no float work but the last division
    (2–3× faster). Beyond ``_EXACT_RANK_SUMS`` pairs the float sums round,
    and ``_pearson_row`` runs on the float ranks.
    """
    m, k = idx.shape
    if k > _EXACT_RANK_SUMS:
        _spearman_drawn_rounded(x_codes, x_distinct, y_codes, y_distinct, idx, out)
        return
    n = x_codes.size
    drawn = np.empty(n, dtype=np.int64)  # times each pair is drawn
    x_below = np.empty(x_distinct + 1, dtype=np.int64)
    y_below = np.empty(y_distinct + 1, dtype=np.int64)
    x_rank = np.empty(x_distinct, dtype=np.int64)
    y_rank = np.empty(y_distinct, dtype=np.int64)
    for r in range(m):
        drawn[:] = 0
        for j in range(k):
            drawn[idx[r, j]] += 1
        x_below[:] = 0
        y_below[:] = 0
        for i in range(n):
            x_below[x_codes[i] + 1] += drawn[i]
            y_below[y_codes[i] + 1] += drawn[i]
        s_xx = _doubled_centred_ranks(x_below, k, x_rank)
        s_yy = _doubled_centred_ranks(y_below, k, y_rank)
        s_xy = 0
        for i in range(n):
            s_xy += drawn[i] * x_rank[x_codes[i]] * y_rank[y_codes[i]]
        # the sums of ``_pearson_row`` are these over 4, exactly
        num = 0.25 * s_xy
        den = np.sqrt((0.25 * s_xx) * (0.25 * s_yy))
        out[r] = num / den if den > 1e-12 * (1 + abs(num)) else np.nan


@njit(cache=True, nogil=True)
def _doubled_centred_ranks(below, k, rank):
    """Twice each distinct value's average rank in a resample of ``k``, minus
    k + 1, into ``rank``; returns their sum of squares over the resample.
    ``below[v + 1]``: how often value v was drawn (``below[0]`` 0), made here
    the count of values below v + 1: a value drawn c times after s smaller
    ones ranks s + (c + 1) / 2, so twice that less k + 1 is 2 s + c - k."""
    for v in range(1, below.size):
        below[v] += below[v - 1]
    total = 0
    for v in range(below.size - 1):
        rank[v] = below[v] + below[v + 1] - k
        total += (below[v + 1] - below[v]) * rank[v] * rank[v]
    return total


@njit(cache=True, nogil=True)
def _spearman_drawn_rounded(x_codes, x_distinct, y_codes, y_distinct, idx, out):
    """``spearman_drawn`` by float ranks and ``_pearson_row`` (any size)."""
    m, k = idx.shape
    xs, ys = np.empty(k), np.empty(k)
    xc, yc, work = np.empty(k), np.empty(k), np.empty(k)
    x_count, y_count = np.empty(x_distinct + 1), np.empty(y_distinct + 1)
    for r in range(m):
        _ranks_of_row(x_codes, x_distinct, idx[r], x_count, xs)
        _ranks_of_row(y_codes, y_distinct, idx[r], y_count, ys)
        out[r] = _pearson_row(xs, ys, k, xc, yc, work)


@njit(cache=True, nogil=True)
def _fold8(lanes):
    """Eight running sums added as numpy adds them (``_block_sum``)."""
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
        (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
    )


@njit(cache=True, nogil=True)
def _pearson_row_block(xs, ys, n, lanes):
    """``_pearson_row`` for n <= 128 (one block of numpy's sum), bit for bit:
    its three sums of products run together, each in ``_block_sum``'s eight
    running sums and order, with no array of products (~1.5× faster).
    ``lanes``: scratch (3, 8)."""
    mx = _block_sum(xs, 0, n) / n
    my = _block_sum(ys, 0, n) / n
    if n < 8:
        num = sxx = syy = 0.0
        for j in range(n):
            dx, dy = xs[j] - mx, ys[j] - my
            num += dx * dy
            sxx += dx * dx
            syy += dy * dy
    else:
        l_xy, l_xx, l_yy = lanes[0], lanes[1], lanes[2]
        for j in range(8):
            dx, dy = xs[j] - mx, ys[j] - my
            l_xy[j], l_xx[j], l_yy[j] = dx * dy, dx * dx, dy * dy
        stop = n - n % 8
        for i in range(8, stop, 8):
            for j in range(8):
                dx, dy = xs[i + j] - mx, ys[i + j] - my
                l_xy[j] += dx * dy
                l_xx[j] += dx * dx
                l_yy[j] += dy * dy
        num, sxx, syy = _fold8(l_xy), _fold8(l_xx), _fold8(l_yy)
        for j in range(stop, n):
            dx, dy = xs[j] - mx, ys[j] - my
            num += dx * dy
            sxx += dx * dx
            syy += dy * dy
    den = np.sqrt(sxx * syy)
    if den > 1e-12 * (1 + abs(num)):
        return num / den
    return np.nan


@njit(cache=True, nogil=True)
def finite_ties(boot, estimate, tolerance, finite):
    """The finite values of ``boot`` (copied to the front of ``finite``, in
    order), how many there are, how many of them are below ``estimate``
    but not within ``tolerance`` of it, and how many are within it: what
    ``correlation._bca`` counts with numpy's masks, in one pass."""
    m = below = tie = 0
    for v in boot:
        if np.isfinite(v):
            finite[m] = v
            m += 1
            if abs(v - estimate) <= tolerance:
                tie += 1
            elif v < estimate:
                below += 1
    return m, below, tie


@njit(cache=True, nogil=True)
def _pearson_row_registers(xs, ys, n):
    """``_pearson_row_block`` for 8 <= n <= 128, bit for bit, with its eight
    running sums of each product in local variables rather than an array
    (kept in registers: ~1.4x faster over a bootstrap); the same terms added
    in the same order."""
    mx = _block_sum(xs, 0, n) / n
    my = _block_sum(ys, 0, n) / n
    d0, e0 = xs[0] - mx, ys[0] - my
    d1, e1 = xs[1] - mx, ys[1] - my
    d2, e2 = xs[2] - mx, ys[2] - my
    d3, e3 = xs[3] - mx, ys[3] - my
    d4, e4 = xs[4] - mx, ys[4] - my
    d5, e5 = xs[5] - mx, ys[5] - my
    d6, e6 = xs[6] - mx, ys[6] - my
    d7, e7 = xs[7] - mx, ys[7] - my
    p0, p1, p2, p3 = d0 * e0, d1 * e1, d2 * e2, d3 * e3
    p4, p5, p6, p7 = d4 * e4, d5 * e5, d6 * e6, d7 * e7
    a0, a1, a2, a3 = d0 * d0, d1 * d1, d2 * d2, d3 * d3
    a4, a5, a6, a7 = d4 * d4, d5 * d5, d6 * d6, d7 * d7
    b0, b1, b2, b3 = e0 * e0, e1 * e1, e2 * e2, e3 * e3
    b4, b5, b6, b7 = e4 * e4, e5 * e5, e6 * e6, e7 * e7
    stop = n - n % 8
    for i in range(8, stop, 8):
        d0, e0 = xs[i] - mx, ys[i] - my
        d1, e1 = xs[i + 1] - mx, ys[i + 1] - my
        d2, e2 = xs[i + 2] - mx, ys[i + 2] - my
        d3, e3 = xs[i + 3] - mx, ys[i + 3] - my
        d4, e4 = xs[i + 4] - mx, ys[i + 4] - my
        d5, e5 = xs[i + 5] - mx, ys[i + 5] - my
        d6, e6 = xs[i + 6] - mx, ys[i + 6] - my
        d7, e7 = xs[i + 7] - mx, ys[i + 7] - my
        p0, p1, p2, p3 = p0 + d0 * e0, p1 + d1 * e1, p2 + d2 * e2, p3 + d3 * e3
        p4, p5, p6, p7 = p4 + d4 * e4, p5 + d5 * e5, p6 + d6 * e6, p7 + d7 * e7
        a0, a1, a2, a3 = a0 + d0 * d0, a1 + d1 * d1, a2 + d2 * d2, a3 + d3 * d3
        a4, a5, a6, a7 = a4 + d4 * d4, a5 + d5 * d5, a6 + d6 * d6, a7 + d7 * d7
        b0, b1, b2, b3 = b0 + e0 * e0, b1 + e1 * e1, b2 + e2 * e2, b3 + e3 * e3
        b4, b5, b6, b7 = b4 + e4 * e4, b5 + e5 * e5, b6 + e6 * e6, b7 + e7 * e7
    num = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
    sxx = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    syy = ((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7))
    for j in range(stop, n):
        dx, dy = xs[j] - mx, ys[j] - my
        num += dx * dy
        sxx += dx * dx
        syy += dy * dy
    den = np.sqrt(sxx * syy)
    if den > 1e-12 * (1 + abs(num)):
        return num / den
    return np.nan
