"""Numba kernels of the artifact search (analysis/artifact.py): the weighted
least-squares residual energies of many candidate pulse models. Arrays and
scalars only.

Each computes what the numpy code it replaced computed (references in
tests/analysis/_reference.py, compared in tests/analysis/test_kernels.py); only
the order of the sums differs, so energies agree to ~1e-12 relative, not to
the bit. They only choose a candidate (the argmin), never enter a result, so
a recording's results stay bit-identical unless two candidates tie to 1e-12.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _solve_inplace(a, b):
    """Solve ``a x = b`` by Gaussian elimination with partial pivoting (as
    LAPACK's getrf/getrs); ``a`` (k, k) and ``b`` (k, c) are overwritten, the
    solution left in ``b``."""
    k = a.shape[0]
    nb = b.shape[1]
    for j in range(k):
        p = j
        big = abs(a[j, j])
        for i in range(j + 1, k):
            if abs(a[i, j]) > big:
                big = abs(a[i, j])
                p = i
        if p != j:
            for q in range(k):
                tmp = a[j, q]
                a[j, q] = a[p, q]
                a[p, q] = tmp
            for q in range(nb):
                tmp = b[j, q]
                b[j, q] = b[p, q]
                b[p, q] = tmp
        piv = a[j, j]
        for i in range(j + 1, k):
            f = a[i, j] / piv
            if f != 0.0:
                for q in range(j + 1, k):
                    a[i, q] -= f * a[j, q]
                for q in range(nb):
                    b[i, q] -= f * b[j, q]
    for j in range(k - 1, -1, -1):
        for q in range(nb):
            s = b[j, q]
            for i in range(j + 1, k):
                s -= a[j, i] * b[i, q]
            b[j, q] = s / a[j, j]


@njit(cache=True, nogil=True)
def _energies(basis, y, w, total, out, gram, rhs, keep, nz, own):
    """Residual energies of ``y`` on one basis (n, k), per channel, into ``out``
    (c,). ``w`` (n, 1) shared or (n, c) per channel; ``total`` (c,) Σ w y².
    Rows are sparse in the pulse models (a column is zero before or after an
    edge): only each row's non-zero columns are summed, and the Gram matrix's
    upper triangle, mirrored. With per-channel weights the rows every channel
    weights alike (all but a few) go into one shared Gram matrix, the others
    into each channel's own (``own``, (c, k, k)); scratch: ``gram`` (k, k),
    ``rhs`` and ``keep`` (k, c), ``nz`` (k,)."""
    n, k = basis.shape
    n_ch = y.shape[1]
    shared = w.shape[1] == 1
    for a in range(k):
        for b in range(k):
            gram[a, b] = 0.0
        for c in range(n_ch):
            rhs[a, c] = 0.0
    if not shared:
        for c in range(n_ch):
            for a in range(k):
                for b in range(k):
                    own[c, a, b] = 0.0
    for r in range(n):
        m = 0
        for a in range(k):
            if basis[r, a] != 0.0:
                nz[m] = a
                m += 1
        alike = True
        if not shared:
            for c in range(1, n_ch):
                if w[r, c] != w[r, 0]:
                    alike = False
        if alike:
            wr = w[r, 0]
            if wr == 0.0:
                continue
            for ia in range(m):
                a = nz[ia]
                ba = basis[r, a] * wr
                for ib in range(ia, m):
                    b = nz[ib]
                    gram[a, b] += ba * basis[r, b]
                for c in range(n_ch):
                    rhs[a, c] += ba * y[r, c]
        else:
            for c in range(n_ch):
                wr = w[r, c]
                if wr == 0.0:
                    continue
                for ia in range(m):
                    a = nz[ia]
                    ba = basis[r, a] * wr
                    for ib in range(ia, m):
                        b = nz[ib]
                        own[c, a, b] += ba * basis[r, b]
                    rhs[a, c] += ba * y[r, c]
    for a in range(k):
        for c in range(n_ch):
            keep[a, c] = rhs[a, c]
    if shared:
        _solve_symmetric(gram, rhs, 0, n_ch)
    else:
        one = np.empty((k, k))
        col = np.empty((k, 1))
        for c in range(n_ch):
            for a in range(k):
                for b in range(a, k):
                    one[a, b] = gram[a, b] + own[c, a, b]
                col[a, 0] = rhs[a, c]
            _solve_symmetric(one, col, 0, 1)
            for a in range(k):
                rhs[a, c] = col[a, 0]
    for c in range(n_ch):
        s = 0.0
        for a in range(k):
            s += rhs[a, c] * keep[a, c]
        out[c] = total[c] - s


@njit(cache=True, nogil=True)
def _solve_symmetric(gram, rhs, first, stop):
    """Mirror ``gram``'s upper triangle, add the ridge 1e-9 · trace + 1e-12 on
    its diagonal and solve for ``rhs`` columns ``first``..``stop`` in place."""
    k = gram.shape[0]
    tr = 0.0
    for a in range(k):
        tr += gram[a, a]
        for b in range(a):
            gram[a, b] = gram[b, a]
    ridge = 1e-9 * tr + 1e-12
    for a in range(k):
        gram[a, a] += ridge
    _solve_inplace(gram, rhs[:, first:stop])


@njit(cache=True, nogil=True)
def _totals(y, w):
    n, n_ch = y.shape
    shared = w.shape[1] == 1
    total = np.zeros(n_ch)
    for c in range(n_ch):
        s = 0.0
        for r in range(n):
            s += w[r, 0 if shared else c] * y[r, c] * y[r, c]
        total[c] = s
    return total


@njit(cache=True, nogil=True)
def basis_energy(basis, y, w, out):
    """Weighted least-squares residual energy of ``y`` on each basis, per channel.

    ``basis`` (m, n, k); ``y`` (n, c); ``w`` (n, 1): one weight per row shared
    by the channels, or (n, c): per channel. ``out`` (m, c) receives
    Σ w y² − coefᵀ rhs, where coef solves (Bᵀ W B + ridge) coef = Bᵀ W y with
    the ridge 1e-9 · trace + 1e-12 on the diagonal (a column can be all zero
    where its rows have no weight).
    """
    m, _, k = basis.shape
    n_ch = y.shape[1]
    gram = np.empty((k, k))
    rhs = np.empty((k, n_ch))
    keep = np.empty((k, n_ch))
    nz = np.empty(k, dtype=np.int64)
    own = np.empty((n_ch, k, k))
    total = _totals(y, w)
    for i in range(m):
        _energies(basis[i], y, w, total, out[i], gram, rhs, keep, nz, own)


@njit(cache=True, nogil=True)
def pulse_energy(t, shifts, durations, taus, y, w, out):
    """``basis_energy`` of the pulse models ``artifact._pulse_basis(t, shifts,
    durations)``, each built in turn (never all at once): a baseline line,
    the pulse's sine and cosine and their second harmonic during it, a step
    and decaying exponentials (``taus``) after it, and an indicator of each
    sample either side of each edge."""
    n = t.size
    m = shifts.size
    k = 2 + 4 + 1 + taus.size + 4
    n_ch = y.shape[1]
    basis = np.zeros((n, k))
    gram = np.empty((k, k))
    rhs = np.empty((k, n_ch))
    keep = np.empty((k, n_ch))
    nz = np.empty(k, dtype=np.int64)
    own = np.empty((n_ch, k, k))
    total = _totals(y, w)
    span = max(t[n - 1] - t[0], 1e-9)
    decay = np.exp(-(span / max(n - 1, 1)) / taus)
    for r in range(n):
        basis[r, 0] = 1.0
        basis[r, 1] = 2 * (t[r] - t[0]) / span - 1
    for i in range(m):
        shift = shifts[i]
        d = durations[i]
        end = shift + d
        first_after = -1
        for r in range(n):
            for a in range(2, k):
                basis[r, a] = 0.0
            u = t[r] - shift
            if u >= 0 and u < d:
                # (the second harmonic from the first: 2 of 4 sines, the
                # same to a few ulps)
                phase = 2 * np.pi * u / d
                sn = np.sin(phase)
                cs = np.cos(phase)
                basis[r, 2] = sn
                basis[r, 3] = cs
                basis[r, 4] = 2 * sn * cs
                basis[r, 5] = cs * cs - sn * sn
            after = u - d
            if after >= 0:
                basis[r, 6] = 1.0
                if first_after < 0 or r - first_after == 16:
                    first_after = r
                    for j in range(taus.size):
                        basis[r, 7 + j] = np.exp(-after / taus[j])
                else:
                    # rows are equally spaced: each tail decays by a fixed
                    # factor a row, recomputed exactly every 16th row so
                    # that rounding never builds up
                    for j in range(taus.size):
                        basis[r, 7 + j] = basis[r - 1, 7 + j] * decay[j]
        col = 7 + taus.size
        for edge in (shift, end):
            e = np.searchsorted(t, edge)  # first row at or after the edge
            if e - 1 >= 0 and e - 1 < n:
                basis[e - 1, col] = 1.0
            if e < n:
                basis[e, col + 1] = 1.0
            col += 2
        _energies(basis, y, w, total, out[i], gram, rhs, keep, nz, own)


@njit(cache=True, nogil=True)
def _select(v, kth):
    """Reorder ``v`` in place so that ``v[kth]`` is its kth smallest value,
    none before it larger and none after it smaller (as ``np.partition``;
    Wirth's selection, no copy). No NaN in ``v``."""
    lo = 0
    hi = v.size - 1
    while lo < hi:
        pivot = v[kth]
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while pivot < v[j]:
                j -= 1
            if i <= j:
                tmp = v[i]
                v[i] = v[j]
                v[j] = tmp
                i += 1
                j -= 1
        if j < kth:
            lo = i
        if kth < i:
            hi = j
    return v[kth]


@njit(cache=True, nogil=True)
def _median_inplace(v):
    """``np.median(v)`` of a 1-D float64 array, reordering it: the middle
    value, or for an even count the mean of the two middle values (as numpy:
    (a + b) / 2); NaN when any value is NaN."""
    n = v.size
    for i in range(n):
        if np.isnan(v[i]):
            return np.nan
    h = n // 2
    middle = _select(v, h)
    if n % 2 == 1:
        return middle
    below = v[0]
    for i in range(1, h):
        if v[i] > below:
            below = v[i]
    return (below + middle) / 2


@njit(cache=True, nogil=True)
def mad_columns(x, skip, out):
    """``out[c]`` = 1.4826 × median |v − median v| of column ``c`` of ``x``
    over the rows not in ``skip`` (n, c); inf when 8 rows or fewer remain."""
    n, n_ch = x.shape
    v = np.empty(n)
    for c in range(n_ch):
        m = 0
        for r in range(n):
            if not skip[r, c]:
                v[m] = x[r, c]
                m += 1
        if m <= 8:
            out[c] = np.inf
            continue
        mid = _median_inplace(v[:m].copy())
        for i in range(m):
            v[i] = abs(v[i] - mid)
        out[c] = 1.4826 * _median_inplace(v[:m])


@njit(cache=True, nogil=True)
def median_abs_step(x, out):
    """``out[c]`` = median |x[r + 1, c] − x[r, c]| over the rows of ``x``."""
    n, n_ch = x.shape
    v = np.empty(max(n - 1, 0))
    for c in range(n_ch):
        for r in range(n - 1):
            v[r] = abs(x[r + 1, c] - x[r, c])
        out[c] = _median_inplace(v)


@njit(cache=True, nogil=True)
def theil_sen_inliers(x, y, tolerance, out):
    """``volleys._theil_sen_inliers`` (points within ``tolerance`` of the
    median-of-slopes line) into ``out`` (bool), with numpy's medians exactly."""
    n = y.size
    idx = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        out[i] = np.isfinite(y[i])
        if out[i]:
            idx[m] = i
            m += 1
    if m < 3:
        return
    slopes = np.empty(m * (m - 1) // 2)
    q = 0
    for a in range(m):
        for b in range(a + 1, m):
            dx = x[idx[b]] - x[idx[a]]
            if dx != 0:
                slopes[q] = (y[idx[b]] - y[idx[a]]) / dx
                q += 1
    if q == 0:
        return
    slope = _median_inplace(slopes[:q])
    rest = np.empty(m)
    for a in range(m):
        rest[a] = y[idx[a]] - slope * x[idx[a]]
    t0 = _median_inplace(rest)
    for i in range(n):
        out[i] = out[i] and abs(y[i] - (t0 + slope * x[i])) <= tolerance


@njit(cache=True, nogil=True)
def run_around(above, k, bridge):
    """``volleys._run_around``: first and last index of the run of ``above``
    around ``k``, gaps shorter than ``bridge`` samples bridged."""
    n = above.size
    left = 0
    for i in range(k, -1, -1):
        near = False
        for j in range(max(0, i - bridge), i):
            if above[j]:
                near = True
                break
        if not near:
            left = i
            break
    right = n - 1
    for i in range(k, n):
        near = False
        for j in range(i + 1, min(n, i + 1 + bridge)):
            if above[j]:
                near = True
                break
        if not near:
            right = i
            break
    return left, right


@njit(cache=True, nogil=True)
def spike_windows(
    filtered, noise, blanked, artifact, rows, chans, half, bridge, near, far, out
):
    """What ``volleys._time_arrivals`` measures of each channel's spike, but
    its centroid: one row of ``out`` per channel in ``chans``: window start
    ``lo``, the spike's run ``left``..``right`` within it, its largest phase
    ``k``, peak-to-peak, |peak| / noise, the peak's sign, the lower quartile of
    |signal| / noise around it / 0.3186 (inf if 8 samples or fewer), 1 if a
    blanked sample is within ``near``, the largest |artifact| there (0 if
    ``artifact`` has no rows) and the largest |signal| of the spike. Exact:
    comparisons, divisions and an order statistic only."""
    n = filtered.shape[0]
    y = np.empty(2 * half + 1)
    above = np.empty(2 * half + 1, dtype=np.bool_)
    around = np.empty(2 * far)
    for q in range(chans.size):
        c = chans[q]
        lo = max(0, rows[c] - half)
        hi = min(n, rows[c] + half + 1)
        nz = max(noise[c], 1e-12)
        m = hi - lo
        k = 0
        best = -1.0
        for i in range(m):
            y[i] = filtered[lo + i, c] / nz
            above[i] = abs(y[i]) > 3.0
            if abs(y[i]) > best:
                best = abs(y[i])
                k = i
        left, right = run_around(above[:m], k, bridge)
        top = filtered[lo + left, c]
        bottom = top
        peak = 0.0
        for r in range(lo + left, lo + right + 1):
            v = filtered[r, c]
            top = max(top, v)
            bottom = min(bottom, v)
            peak = max(peak, abs(v))
        a = max(0, lo + left - near)
        b = min(n, lo + right + near + 1)
        s = 0
        for r in range(max(0, a - far), a):
            around[s] = abs(filtered[r, c] / nz)
            s += 1
        for r in range(b, min(n, b + far)):
            around[s] = abs(filtered[r, c] / nz)
            s += 1
        local = np.inf
        if s > 8:
            local = _select(around[:s], s // 4) / 0.3186
        near_blank = 0.0
        big = 0.0
        for r in range(a, b):
            if blanked[r, c]:
                near_blank = 1.0
            if artifact.shape[0] > 0:
                big = max(big, abs(artifact[r, c]))
        out[q, 0] = lo
        out[q, 1] = left
        out[q, 2] = right
        out[q, 3] = k
        out[q, 4] = top - bottom
        out[q, 5] = abs(y[k])
        out[q, 6] = np.sign(y[k])
        out[q, 7] = local
        out[q, 8] = near_blank
        out[q, 9] = big
        out[q, 10] = peak
        out[q, 11] = a
        out[q, 12] = b


@njit(cache=True, nogil=True)
def envelope_into(filtered, noise, blanked, a, b, half, env, peaked):
    """``volleys.spike_envelope`` of rows ``a``..``b`` written into the same
    rows of ``env`` (running maximum) and ``peaked`` (running mean): |signal|
    / noise, 0 where blanked, over ±``half`` rows with zeros beyond ``a`` and
    ``b`` — scipy's ``maximum_filter1d`` and ``uniform_filter1d`` (mode
    "constant"), the mean as scipy sums it (a running sum, updated by each
    entering minus leaving value, divided by the width), so exactly its
    values."""
    n_ch = filtered.shape[1]
    length = b - a
    if length <= 0:
        return
    size = 2 * half + 1
    ext = np.zeros(length + 2 * half)
    for c in range(n_ch):
        scale = max(noise[c], 1e-12)
        for i in range(length):
            r = a + i
            ext[half + i] = 0.0 if blanked[r, c] else abs(filtered[r, c]) / scale
        for i in range(length):
            top = 0.0
            for j in range(i, i + size):
                if ext[j] > top:
                    top = ext[j]
            env[a + i, c] = top
        tmp = 0.0
        for j in range(size):
            tmp += ext[j]
        peaked[a, c] = tmp / size
        for i in range(1, length):
            tmp += ext[i + size - 1] - ext[i - 1]
            peaked[a + i, c] = tmp / size


# ---------------------------------------------------------- robust fit
# ``artifact._robust_fit``'s steps between its BLAS/LAPACK calls (the Gram
# matrices, the solve and the fitted values stay numpy's, whose summation
# order a kernel cannot reproduce). Each computes numpy's values bit for bit:
# the fit's coefficients go into every result.


@njit(cache=True, nogil=True)
def fit_floor(y, w0, floor, counts):
    """``floor[c]`` = max(2e-3 · max |y[r, c]| over rows with ``w0 > 0``, 0.5)
    and ``counts[c]`` those rows (as numpy: ``np.maximum(2e-3 * np.max(np.abs(y)
    * used, axis=0), 0.5)``, NaN propagated)."""
    n, n_ch = y.shape
    for c in range(n_ch):
        top = 0.0
        m = 0
        for r in range(n):
            used = w0[r, c] > 0
            m += used
            v = abs(y[r, c]) * (1.0 if used else 0.0)
            if r == 0 or v > top or np.isnan(v):  # (NaN stays NaN)
                top = v
        floor[c] = _max_nan(2e-3 * top, 0.5)
        counts[c] = m


@njit(cache=True, nogil=True)
def _max_nan(a, b):
    """``np.maximum(a, b)``: NaN if either is."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return a if a >= b else b


@njit(cache=True, nogil=True)
def weigh_rows(basis, weights, y, bw, rhs):
    """``bw[c]`` = ``basis`` with row r scaled by ``weights[r, c]`` (as
    ``basis[None] * weights.T[:, :, None]``) and ``rhs[c, a]`` = Σ_r bw[c, r, a]
    · y[r, c], added in row order from 0 as ``np.einsum("cnk,nc->ck", bw, y)``
    adds them."""
    n, k = basis.shape
    for c in range(y.shape[1]):
        for a in range(k):
            rhs[c, a] = 0.0
        for r in range(n):
            wr = weights[r, c]
            yr = y[r, c]
            for a in range(k):
                v = basis[r, a] * wr
                bw[c, r, a] = v
                rhs[c, a] += v * yr


@njit(cache=True, nogil=True)
def add_ridge(gram):
    """``gram += 1e-9 · I · (trace + 1e-3)`` for each (k, k) matrix of ``gram``
    (c, k, k), the trace added as numpy adds it (eight running sums; k ≤
    128), the off-diagonal zeros added too (as numpy's ``ridge[None] * …``)."""
    k = gram.shape[1]
    if k > 128:
        raise ValueError("add_ridge: more than 128 columns")
    acc = np.empty(8)
    for c in range(gram.shape[0]):
        if k < 8:
            tr = 0.0
            for a in range(k):
                tr += gram[c, a, a]
        else:
            for j in range(8):
                acc[j] = gram[c, j, j]
            i = 8
            while i < k - k % 8:
                for j in range(8):
                    acc[j] += gram[c, i + j, i + j]
                i += 8
            tr = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + (
                (acc[4] + acc[5]) + (acc[6] + acc[7])
            )
            while i < k:
                tr += gram[c, i, i]
                i += 1
        scale = tr + 1e-3
        for a in range(k):
            for b in range(k):
                gram[c, a, b] += (1e-9 if a == b else 0.0) * scale


@njit(cache=True, nogil=True)
def tukey_reweigh(y, fitted, w0, floor, counts, tukey_c, weights):
    """One IRLS step (Tukey's bisquare) into ``weights`` (n, c): r = |y −
    fitted| / (tukey_c · scale), weight (1 − r²)² · w0 where r < 1, else 0;
    each channel's scale max(1.4826 · the ((count − 1) // 2)-th smallest |y −
    fitted| over its rows with ``w0 > 0`` (``counts[c]`` ≥ 1 of them),
    ``floor[c]``). numpy's values exactly: the order statistic is
    ``np.partition``'s with the other rows at inf and NaN last."""
    n, n_ch = y.shape
    v = np.empty(n)
    for c in range(n_ch):
        m = 0
        nan = 0
        for r in range(n):
            if w0[r, c] > 0:
                d = abs(y[r, c] - fitted[r, c])
                if np.isnan(d):
                    nan += 1
                else:
                    v[m] = d
                    m += 1
        mid = (counts[c] - 1) // 2
        if mid < m:
            mad = _select(v[:m], mid)
        elif mid < n - nan:
            mad = np.inf
        else:
            mad = np.nan
        denominator = tukey_c * _max_nan(1.4826 * mad, floor[c])
        for r in range(n):
            q = abs(y[r, c] - fitted[r, c]) / denominator
            weights[r, c] = ((1 - q * q) * (1 - q * q) if q < 1 else 0.0) * w0[r, c]
