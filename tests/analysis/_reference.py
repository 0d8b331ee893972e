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


def _sync_costs(obs, exp, repeat, lo, hi, mismatch, gap, stay):
    """The alignment's costs, spelled out: ``emit(j, t)`` frame j on trigger t,
    ``step(j, a, b)`` frame j − 1 on a to frame j on b, and the band mask."""
    n, n_trig = len(obs), len(exp)
    inf = math.inf

    def emit(j, t):
        known = obs[j] >= 0 and exp[t] >= 0
        return mismatch if known and obs[j] != exp[t] else 0.0

    def step(j, a, b):
        if repeat[j]:
            return 0.0 if b == a else inf
        if b == a + 1:
            return 0.0
        if b == a:
            return stay
        return gap if b > a + 1 else inf

    inside = np.zeros((n, n_trig), dtype=bool)
    for j in range(n):
        inside[j, lo[j] : hi[j]] = True
    return emit, step, inside


def sync_marginals_reference(obs, exp, repeat, lo, hi, mismatch, gap, stay):
    """Plain DP over every (frame, trigger) cell: (best_t, best_cost, second).

    Cells outside a frame's band ``[lo[j], hi[j])`` are infinite. A step from
    trigger ``a`` (frame j - 1) to ``b`` (frame j) costs 0 if ``b = a + 1``,
    ``stay`` if ``b = a`` (0, and the only step, if ``repeat[j]``), ``gap`` if
    ``b > a + 1``; every other step is forbidden. Each frame costs ``mismatch``
    where its bit and the trigger's are both known and differ. The least cost of
    a path through (j, t) is forward + backward; per frame, the best t (lowest
    on a tie), its cost, and the least cost of any other t.
    """
    n, n_trig = len(obs), len(exp)
    inf = math.inf

    emit, step, inside = _sync_costs(obs, exp, repeat, lo, hi, mismatch, gap, stay)
    fwd = np.full((n, n_trig), inf)
    bwd = np.full((n, n_trig), inf)
    for t in range(n_trig):
        if inside[0, t]:
            fwd[0, t] = emit(0, t)
    for j in range(1, n):
        for b in range(n_trig):
            if inside[j, b]:
                fwd[j, b] = emit(j, b) + min(
                    fwd[j - 1, a] + step(j, a, b) for a in range(n_trig)
                )
    bwd[n - 1, inside[n - 1]] = 0.0
    for j in range(n - 2, -1, -1):
        for a in range(n_trig):
            if inside[j, a]:
                bwd[j, a] = min(
                    step(j + 1, a, b) + emit(j + 1, b) + bwd[j + 1, b]
                    for b in range(n_trig)
                )
    total = fwd + bwd
    best_t = np.argmin(total, axis=1)
    best = total[np.arange(n), best_t]
    others = total.copy()
    others[np.arange(n), best_t] = inf
    return best_t, best, others.min(axis=1)


def sync_rival_reference(obs, exp, repeat, lo, hi, mismatch, gap, stay, path, bonus):
    """Plain DP: per frame, the least cost of a whole path with it off ``path``.

    Costs as in ``sync_marginals_reference``. A prefix detached from ``path``
    (its first frame behind ``path[0]``, no frame on the path) costs ``bonus``
    less, and so does a suffix detached from it (no frame after the one in
    question on the path, its last frame ahead of ``path[-1]``); a path may
    take either discount, or both.
    """
    n, n_trig = len(obs), len(exp)
    inf = math.inf

    emit, step, inside = _sync_costs(obs, exp, repeat, lo, hi, mismatch, gap, stay)
    on_path = np.zeros((n, n_trig), dtype=bool)
    for j in range(n):
        if 0 <= path[j] < n_trig:
            on_path[j, path[j]] = True

    def table(start, free):
        """Forward costs; ``free``: cells a path may use."""
        fwd = np.full((n, n_trig), inf)
        for t in range(n_trig):
            if inside[0, t] and free[0, t]:
                fwd[0, t] = emit(0, t) + start[t]
        for j in range(1, n):
            for b in range(n_trig):
                if inside[j, b] and free[j, b]:
                    fwd[j, b] = emit(j, b) + min(
                        fwd[j - 1, a] + step(j, a, b) for a in range(n_trig)
                    )
        return fwd

    def back(end, free):
        """Backward costs (frames after j); ``free``: cells a path may use."""
        bwd = np.full((n, n_trig), inf)
        for t in range(n_trig):
            if inside[n - 1, t] and free[n - 1, t]:
                bwd[n - 1, t] = end[t]
        for j in range(n - 2, -1, -1):
            for a in range(n_trig):
                if inside[j, a]:  # the cell itself is the caller's concern
                    bwd[j, a] = min(
                        (
                            step(j + 1, a, b) + emit(j + 1, b) + bwd[j + 1, b]
                            for b in range(n_trig)
                            if free[j + 1, b]
                        ),
                        default=inf,
                    )
        return bwd

    everywhere = np.ones((n, n_trig), dtype=bool)
    t_all = np.arange(n_trig)
    fwd = table(np.zeros(n_trig), everywhere)
    fwd_detached = table(np.where(t_all < path[0], -bonus, inf), ~on_path)
    bwd = back(np.zeros(n_trig), everywhere)
    bwd_detached = back(np.where(t_all > path[n - 1], -bonus, inf), ~on_path)
    total = np.minimum(fwd, fwd_detached) + np.minimum(bwd, bwd_detached)
    total[on_path] = inf
    return total.min(axis=1)


def rank_rows_reference(x):
    """Average ranks (1-based) within each row, spelled out: each value's rank
    is 1 + the count of smaller values + half the count of other equal ones."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for r in range(x.shape[0]):
        row = x[r].tolist()
        for i, v in enumerate(row):
            smaller = sum(1 for u in row if u < v)
            equal = sum(1 for u in row if u == v)
            out[r, i] = 1 + smaller + (equal - 1) / 2
    return out


def measure_motion_reference(y, t, onset, end, baseline_s, threshold):
    """One window, in plain numpy: (filmed, latency, peak, time to peak).

    The line through the finite ``y`` at times ``[onset - baseline_s, onset)``
    (least squares; fewer than two distinct times: not filmed), and the
    deviation from it at the finite ``y`` in ``[onset, end)`` (none: not
    filmed): its largest value, when, and when it first exceeds ``threshold``.
    """
    base = (t >= onset - baseline_s) & (t < onset) & np.isfinite(y)
    resp = (t >= onset) & (t < end) & np.isfinite(y)
    if np.unique(t[base]).size < 2 or not resp.any():
        return False, np.nan, np.nan, np.nan
    tb, yb = t[base], y[base]
    tm = tb.mean()
    slope = float(((tb - tm) * (yb - yb.mean())).sum() / ((tb - tm) ** 2).sum())
    intercept = float(yb.mean() - slope * tm)
    deviation = np.abs(y[resp] - (intercept + slope * t[resp]))
    tr = t[resp]
    i = int(np.argmax(deviation))
    above = np.flatnonzero(deviation > threshold)
    latency = float(tr[above[0]] - onset) if above.size else np.nan
    return True, latency, float(deviation[i]), float(tr[i] - onset)


def channel_energy_reference(
    basis: np.ndarray, y: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Weighted LS residual energy per basis (m, n, k) and channel of ``y`` (n, c).

    ``w``: a weight per row (n,), or per row and channel (n, c).
    """
    if w.ndim == 2:
        return np.concatenate(
            [
                channel_energy_reference(basis, y[:, c : c + 1], w[:, c])
                for c in range(y.shape[1])
            ],
            axis=1,
        )
    bw = basis * w[None, :, None]
    gram = np.matmul(bw.transpose(0, 2, 1), basis)  # (m, k, k)
    # A tiny ridge: a column can be all zero where its rows have no weight.
    gram += np.eye(basis.shape[2])[None] * (
        1e-9 * np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-12
    )
    rhs = np.matmul(bw.transpose(0, 2, 1), y)  # (m, k, c)
    coef = np.linalg.solve(gram, rhs)
    total = (w[None, :] * y.T * y.T).sum(axis=1)  # (c,)
    return total[None, :] - np.einsum("mkc,mkc->mc", coef, rhs)


def theil_sen_inliers_reference(
    x: np.ndarray, y: np.ndarray, tolerance_s: float
) -> np.ndarray:
    """Points within ``tolerance_s`` of the Theil–Sen line (median of slopes)."""
    ok = np.isfinite(y)
    idx = np.flatnonzero(ok)
    if idx.size < 3:
        return ok
    i, j = np.triu_indices(idx.size, k=1)
    dx = x[idx][j] - x[idx][i]
    keep = dx != 0
    if not keep.any():
        return ok
    slope = float(np.median((y[idx][j] - y[idx][i])[keep] / dx[keep]))
    t0 = float(np.median(y[idx] - slope * x[idx]))
    return ok & (np.abs(y - (t0 + slope * x)) <= tolerance_s)


def run_around_reference(above: np.ndarray, k: int, bridge: int) -> tuple[int, int]:
    """First and last index of the run of ``above`` around ``k``, gaps shorter
    than ``bridge`` samples bridged: the run stops where ``bridge`` samples in a
    row are not above."""
    n = above.size
    cs = np.concatenate([[0], np.cumsum(above)])
    idx = np.arange(n)
    near_left = cs[idx] - cs[np.maximum(0, idx - bridge)] > 0
    near_right = cs[np.minimum(n, idx + 1 + bridge)] - cs[idx + 1] > 0
    stops = np.flatnonzero(~near_left[: k + 1])
    left = int(stops[-1]) if stops.size else 0
    stops = np.flatnonzero(~near_right[k:])
    right = k + int(stops[0]) if stops.size else n - 1
    return left, right


def _volley_names():
    from analysis import volleys

    return volleys


def time_arrivals_reference(
    filtered: np.ndarray,
    rows: np.ndarray,
    support: np.ndarray,
    noise: np.ndarray,
    blanked: np.ndarray,
    fs_hz: float,
    artifact: np.ndarray | None = None,
    edge_rows: tuple[float, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``volleys._time_arrivals`` before its Numba kernel (spike_windows)."""
    V = _volley_names()
    n, n_ch = filtered.shape
    times = np.full(n_ch, np.nan)
    amps = np.full(n_ch, np.nan)
    snr = np.full(n_ch, np.nan)
    polarity = np.zeros(n_ch)
    clean = np.zeros(n_ch, dtype=bool)
    half = max(3, round(V.CENTROID_HALF_WIDTH_S * fs_hz))
    bridge = max(1, round(V.PHASE_GAP_S * fs_hz))
    near = round(0.5e-3 * fs_hz)
    far = round(1.5e-3 * fs_hz)
    edge_margin = round(V.EDGE_MARGIN_S * fs_hz)
    for c in np.flatnonzero(support):
        lo = max(0, int(rows[c]) - half)
        hi = min(n, int(rows[c]) + half + 1)
        y = filtered[lo:hi, c] / max(noise[c], 1e-12)
        k = int(np.argmax(np.abs(y)))
        # The spike is the run of samples beyond 3 SD around its largest
        # phase, gaps of up to V.PHASE_GAP_S between phases bridged; whatever
        # else is in the window (a residual of the artifact, another fibre's
        # spike) is not part of it.
        above = np.abs(y) > 3.0
        left, right = V._run_around(above, k, bridge)
        e = np.where(above[left : right + 1], y[left : right + 1] ** 2, 0.0)
        centre = lo + left + float(np.arange(e.size) @ e) / float(e.sum())
        seg = filtered[lo + left : lo + right + 1, c]
        times[c] = centre
        amps[c] = float(np.ptp(seg))
        snr[c] = float(np.abs(y[k]))
        polarity[c] = np.sign(y[k])
        a, b = max(0, lo + left - near), min(n, lo + right + near + 1)
        around = np.concatenate(
            [filtered[max(0, a - far) : a, c], filtered[b : b + far, c]]
        ) / max(noise[c], 1e-12)
        # The lower quartile of |y| (0.3186 SD for Gaussian noise) ignores
        # another spike that fills up to half of these surroundings.
        local = (
            np.partition(np.abs(around), around.size // 4)[around.size // 4] / 0.3186
            if around.size > 8
            else np.inf
        )
        # Clean: the spike still stands V.LOCAL_SNR_MIN times above what
        # surrounds it, and no clipped sample is near.
        clean[c] = abs(y[k]) >= V.LOCAL_SNR_MIN * local and not blanked[a:b, c].any()
        if artifact is not None:
            big = np.abs(artifact[a:b, c]).max(initial=0.0)
            peak = np.abs(seg).max()
            clean[c] &= big <= V.ARTIFACT_RATIO * peak
            # On a pulse's edge the artifact model is least sure of itself (a
            # length or start a little off leaves its misfit there): a spike
            # on an edge whose artifact is as large as the spike is suspect.
            on_edge = any(
                lo + left - edge_margin <= e <= lo + right + edge_margin
                for e in edge_rows
            )
            clean[c] &= not (on_edge and big > peak)
    chans = np.flatnonzero(support)
    if chans.size:
        good = chans[clean[chans]] if clean[chans].any() else chans
        ref = good[np.nanargmax(snr[good])]
        polarity = polarity * polarity[ref]
        times = align_to_reference_reference(filtered, times, chans, ref, fs_hz)
    return times, amps, snr, polarity, clean


def align_to_reference_reference(
    filtered: np.ndarray,
    centroids: np.ndarray,
    chans: np.ndarray,
    ref: int,
    fs_hz: float,
) -> np.ndarray:
    """``volleys._align_to_reference`` before its Numba kernel."""
    V = _volley_names()
    n = filtered.shape[0]
    half = max(3, round(V.TEMPLATE_HALF_WIDTH_S * fs_hz))
    look = max(1, round(V.ALIGN_SEARCH_S * fs_hz))
    r0 = round(centroids[ref])
    if r0 - half < 0 or r0 + half + 1 > n:
        return centroids
    template = filtered[r0 - half : r0 + half + 1, ref]
    out = centroids.copy()
    for c in chans:
        if c == ref:
            continue
        guess = centroids[c] - centroids[ref]  # lag of c behind ref, rows
        centre = r0 + round(guess)
        a, b = centre - half - look, centre + half + look + 1
        if a < 0 or b > n:
            continue
        xc = np.correlate(filtered[a:b, c], template, mode="valid")
        sign = 1.0 if xc[look] >= 0 else -1.0
        k = int(np.argmax(sign * xc))
        lag = a + V._parabolic(sign * xc, k) + half - r0  # rows c lags ref
        out[c] = centroids[ref] + lag
    return out


def fit_line_reference(
    filtered, rows, use, noise, blanked, fs_hz, zero_row, x, need, tolerance_s,
    velocity_range, artifact, edge_rows,
):  # fmt: skip
    """``volleys._fit_line`` before its Numba kernels (numpy throughout)."""
    V = _volley_names()
    n = filtered.shape[0]
    times, amps, snr, polarity, clean = time_arrivals_reference(
        filtered, np.clip(rows, 0, n - 1), use, noise, blanked, fs_hz, artifact,
        edge_rows,
    )  # fmt: skip
    latency = (times - zero_row) / fs_hz
    keep = theil_sen_inliers_reference(x, latency, tolerance_s)
    if keep.sum() < need:
        return None
    enough_clean = (keep & clean).sum() >= need
    fit = keep & clean if enough_clean else keep
    latency = np.where(keep, latency, np.nan)
    velocity, se, t0 = V.fit_velocity(x, np.where(fit, latency, np.nan))
    if (
        not np.isfinite(velocity)
        or not velocity_range[0] <= velocity <= velocity_range[1]
    ):
        return None
    resid = latency[fit] - (t0 + x[fit] / velocity)
    residual_s = float(np.sqrt(np.sum(resid**2) / max(resid.size - 2, 1)))
    straight = residual_s <= V.RESIDUAL_MAX_S + 0.5 / fs_hz
    return V.Line(
        latency_s=latency,
        amplitude_uv=np.where(keep, amps, np.nan),
        snr=np.where(keep, snr, np.nan),
        polarity=np.where(keep, polarity, 0.0),
        velocity_m_per_s=velocity,
        velocity_se_m_per_s=se,
        t0_s=t0,
        residual_s=residual_s,
        clean=bool(enough_clean and straight),
        fitted=fit,
    )


def candidate_lines_reference(
    env, peaked, scaled, slowness, t0, threshold, cap, need, clear,
    distinct_ratio, tries,
):  # fmt: skip
    """``volleys.find_volleys``'s candidate search before its kernel: every
    line's support and score (``line_support_reference``), the best by numpy's
    argmax, its channels cleared; [(velocity, rows, on)] of the lines kept."""
    env, peaked = env.copy(), peaked.copy()
    n, n_ch = env.shape
    candidates = []
    for _ in range(tries):
        support, score = line_support_reference(
            env, peaked, scaled, slowness, t0, threshold, cap
        )
        best_support = int(support.max())
        if best_support < need:
            break
        masked = np.where(support == best_support, score, -1.0)
        i, j = np.unravel_index(int(np.argmax(masked)), masked.shape)
        rows = np.floor(t0[j] + scaled * slowness[i] + 0.5).astype(np.int64)
        inside = (rows >= 0) & (rows < n)
        on = np.zeros(n_ch, dtype=bool)
        on[inside] = env[rows[inside], np.flatnonzero(inside)] >= threshold
        for c in np.flatnonzero(on):
            env[max(0, rows[c] - clear) : rows[c] + clear + 1, c] = 0.0
            peaked[max(0, rows[c] - clear) : rows[c] + clear + 1, c] = 0.0
        velocity = 1.0 / slowness[i]
        if any(
            max(velocity, v) / min(velocity, v) < distinct_ratio
            for v, _, _ in candidates
        ):
            continue
        candidates.append((velocity, rows, on))
    return candidates


def largest_holes_reference(
    y: np.ndarray, t: np.ndarray, onsets: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """``analysis.displacement._largest_holes_s`` window by window."""
    times = np.sort(t[np.isfinite(y)])
    holes = np.zeros(onsets.size)
    for k in range(onsets.size):
        inside = times[(times >= onsets[k]) & (times < ends[k])]
        if not inside.size:
            continue
        edges = [inside[0] - onsets[k]]
        if inside.size > 1:
            edges.append(float(np.max(np.diff(inside))))
        if np.any(times >= ends[k]):  # filmed past the window: its tail counts
            edges.append(ends[k] - inside[-1])
        holes[k] = max(edges)
    return holes


def robust_fit_reference(
    basis: np.ndarray, y: np.ndarray, w0: np.ndarray, iterations: int = 2
) -> np.ndarray:
    """``analysis.artifact._robust_fit`` in numpy alone (the code its kernels
    replaced): per-channel IRLS with Tukey's bisquare; the coefficients (k, c)."""
    n_ch = y.shape[1]
    k = basis.shape[1]
    weights = w0.copy()
    ridge = 1e-9 * np.eye(k)
    coef = np.zeros((k, n_ch))
    used = w0 > 0
    counts = used.sum(axis=0)
    floor = np.maximum(2e-3 * np.max(np.abs(y) * used, axis=0), 0.5)
    for it in range(iterations + 1):
        bw = basis[None, :, :] * weights.T[:, :, None]  # (c, n, k)
        gram = np.matmul(bw.transpose(0, 2, 1), basis[None])  # (c, k, k)
        gram += ridge[None] * (np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-3)
        rhs = np.einsum("cnk,nc->ck", bw, y)
        coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0].T  # (k, c)
        if it == iterations or not counts.all():
            break
        resid = np.abs(y - basis @ coef)
        mid = (counts - 1) // 2
        ranked = np.where(used, resid, np.inf)
        mad = np.array(
            [np.partition(ranked[:, c], mid[c])[mid[c]] for c in range(n_ch)]
        )
        scale = np.maximum(1.4826 * mad, floor)
        r = resid / (4.685 * scale)
        weights = np.where(r < 1, (1 - r * r) ** 2, 0.0) * w0
    return coef


def pulse_basis_as_built(
    t: np.ndarray, shift: float, duration: float, taus: np.ndarray
) -> np.ndarray:
    """The basis ``_artifact_kernels.pulse_energy`` builds for one candidate,
    value for value (libm's sin, cos and exp, as Numba calls them; the tails'
    per-row decay recomputed every 16th row)."""
    n = t.size
    k = 2 + 4 + 1 + taus.size + 4
    basis = np.zeros((n, k))
    span = max(t[n - 1] - t[0], 1e-9)
    decay = [math.exp(-(span / max(n - 1, 1)) / tau) for tau in taus]
    first_after = -1
    for r in range(n):
        basis[r, 0] = 1.0
        basis[r, 1] = 2 * (t[r] - t[0]) / span - 1
        u = t[r] - shift
        if 0 <= u < duration:
            phase = 2 * math.pi * u / duration
            sn, cs = math.sin(phase), math.cos(phase)
            basis[r, 2:6] = sn, cs, 2 * sn * cs, cs * cs - sn * sn
        after = u - duration
        if after >= 0:
            basis[r, 6] = 1.0
            if first_after < 0 or r - first_after == 16:
                first_after = r
                basis[r, 7 : 7 + taus.size] = [math.exp(-after / tau) for tau in taus]
            else:
                basis[r, 7 : 7 + taus.size] = basis[r - 1, 7 : 7 + taus.size] * decay
    col = 7 + taus.size
    for edge in (shift, shift + duration):
        e = int(np.searchsorted(t, edge))
        if 0 <= e - 1 < n:
            basis[e - 1, col] = 1.0
        if e < n:
            basis[e, col + 1] = 1.0
        col += 2
    return basis
