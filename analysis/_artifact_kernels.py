"""Numba kernels of the artifact search and fit (analysis/artifact.py): the
weighted least-squares residual energies of many candidate pulse models, the
robust fit's steps between its numpy products and LAPACK solves, exact medians
(counted selections), and the spike windows and Theil–Sen line the volley
search uses. Arrays and scalars only.

Each computes what the numpy code it replaced computed (references in
tests/analysis/_reference.py, compared in tests/analysis/test_kernels.py and
test_artifact_kernels_speed.py). The candidates' energies are the one
exception: their sums run in another order than numpy's, so they agree with it
to ~1e-12 relative, not to the bit (``pulse_energy`` equals ``basis_energy``'s
row-by-row sums to the bit); they only choose a candidate (the argmin), never
enter a result, so a recording's results stay bit-identical unless two
candidates tie to 1e-12. Everything else is numpy's to the bit.
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
    _finish_energies(gram, rhs, keep, own, total, shared, out)


@njit(cache=True, nogil=True)
def _finish_energies(gram, rhs, keep, own, total, shared, out):
    """``_energies``' end: solve with the summed upper triangles (``gram``,
    plus each channel's ``own`` unless ``shared``: all channels at once, the
    same numbers each) and ``out[c]`` = total[c] − coefᵀ rhs."""
    k = gram.shape[0]
    n_ch = rhs.shape[1]
    for a in range(k):
        for c in range(n_ch):
            keep[a, c] = rhs[a, c]
    if shared:
        _solve_symmetric(gram, rhs)
    else:
        one = np.empty((k, k))
        col = np.empty((k, 1))
        for c in range(n_ch):
            for a in range(k):
                for b in range(a, k):
                    one[a, b] = gram[a, b] + own[c, a, b]
                col[a, 0] = rhs[a, c]
            _solve_symmetric(one, col)
            for a in range(k):
                rhs[a, c] = col[a, 0]
    for c in range(n_ch):
        s = 0.0
        for a in range(k):
            s += rhs[a, c] * keep[a, c]
        out[c] = total[c] - s


@njit(cache=True, nogil=True)
def _solve_symmetric(gram, rhs):
    """Mirror ``gram``'s upper triangle, add the ridge 1e-9 · trace + 1e-12 on
    its diagonal and solve for ``rhs`` in place (whole arrays, C-ordered:
    Numba indexes a slice's strides, 20 % slower)."""
    k = gram.shape[0]
    tr = 0.0
    for a in range(k):
        tr += gram[a, a]
        for b in range(a):
            gram[a, b] = gram[b, a]
    ridge = 1e-9 * tr + 1e-12
    for a in range(k):
        gram[a, a] += ridge
    _solve_inplace(gram, rhs)


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
    sample either side of each edge.

    The sums are ``_energies``' own, each added in the same order, so the
    energies are the same to the bit; but laid out by what the rows hold
    (``_span_sums``: the pulse's rows, the tail's), and the baseline's own
    sums, the same for every candidate, are added up once."""
    n = t.size
    m = shifts.size
    k = 2 + 4 + 1 + taus.size + 4
    n_ch = y.shape[1]
    basis = np.zeros((n, k))
    edges = np.empty(4, dtype=np.int64)
    gram = np.empty((k, k))
    rhs = np.empty((k, n_ch))
    keep = np.empty((k, n_ch))
    nz = np.empty(k, dtype=np.int64)
    own = np.empty((n_ch, k, k))
    total = _totals(y, w)
    # A term of zero (a column's zero rows) changes no sum unless y is not
    # finite (0 · inf): then every row goes through _energies' loop.
    finite = np.all(np.isfinite(total))
    span = max(t[n - 1] - t[0], 1e-9)
    decay = np.exp(-(span / max(n - 1, 1)) / taus)
    for r in range(n):
        basis[r, 0] = 1.0
        basis[r, 1] = 2 * (t[r] - t[0]) / span - 1
    base_gram = np.zeros((2, 2))
    base_rhs = np.zeros((2, n_ch))
    base_own = np.zeros((n_ch, 2, 2))
    split = _add_rows(
        basis, y, w, 0, n, 0, 2, 0, False, True, base_gram, base_rhs, base_own, nz
    )
    # each row's weight in the shared sums: 0 where the channels differ (those
    # rows' terms go to each channel's own sums)
    shared_w = np.empty(n)
    for r in range(n):
        shared_w[r] = w[r, 0]
        for c in range(1, w.shape[1]):
            if w[r, c] != w[r, 0]:
                shared_w[r] = 0.0
    # Columns 2… of a row are zero unless the last candidate wrote them
    # (``dirty``; its edge indicators are cleared before the next): only
    # those rows are zeroed, not the whole basis for every candidate.
    dirty = np.zeros(n, dtype=np.bool_)
    q = 0
    for i in range(m):
        shift = shifts[i]
        d = durations[i]
        end = shift + d
        for j in range(q):
            for a in range(k - 4, k):
                basis[edges[j], a] = 0.0
        first_after = -1
        during = (n, n)  # rows of the pulse, then of its tail (to the end)
        for r in range(n):
            u = t[r] - shift
            inside = u >= 0 and u < d
            after = u - d
            if not inside and not after >= 0:
                if dirty[r]:
                    for a in range(2, k):
                        basis[r, a] = 0.0
                    dirty[r] = False
                continue
            dirty[r] = True
            if inside:
                # (the second harmonic from the first: 2 of 4 sines, the
                # same to a few ulps)
                phase = 2 * np.pi * u / d
                sn = np.sin(phase)
                cs = np.cos(phase)
                basis[r, 2] = sn
                basis[r, 3] = cs
                basis[r, 4] = 2 * sn * cs
                basis[r, 5] = cs * cs - sn * sn
                during = (min(during[0], r), r + 1)
            else:
                for a in range(2, 6):
                    basis[r, a] = 0.0
            if after >= 0:
                basis[r, 6] = 1.0
                if first_after < 0 or r - first_after == 16:
                    if first_after < 0:
                        tail = r
                    first_after = r
                    for j in range(taus.size):
                        basis[r, 7 + j] = np.exp(-after / taus[j])
                else:
                    # rows are equally spaced: each tail decays by a fixed
                    # factor a row, recomputed exactly every 16th row so
                    # that rounding never builds up
                    for j in range(taus.size):
                        basis[r, 7 + j] = basis[r - 1, 7 + j] * decay[j]
            else:
                for a in range(6, 7 + taus.size):
                    basis[r, a] = 0.0
        if first_after < 0:
            tail = n
        col = 7 + taus.size
        q = 0
        for edge in (shift, end):
            e = np.searchsorted(t, edge)  # first row at or after the edge
            if e - 1 >= 0 and e - 1 < n:
                basis[e - 1, col] = 1.0
                edges[q] = e - 1
                q += 1
            if e < n:
                basis[e, col + 1] = 1.0
                edges[q] = e
                q += 1
            col += 2
        if not finite:
            _energies(basis, y, w, total, out[i], gram, rhs, keep, nz, own)
            continue
        # the baseline's own sums, then the pulse's rows (columns 0, 1, 2–5),
        # the tail's (0, 1, 6…), and the edge columns, each non-zero on one
        # row (so their sums have that row's term alone, in any order)
        gram[:, :] = 0.0
        rhs[:, :] = 0.0
        gram[:2, :2] = base_gram
        rhs[:2, :] = base_rhs
        if split:
            own[:, :, :] = 0.0
            own[:, :2, :2] = base_own
        for lo, hi, r0, r1 in ((2, 6, during[0], during[1]), (6, col - 4, tail, n)):
            _span_sums(basis, shared_w, w, y, r0, r1, lo, hi, gram, rhs)
            if split:
                _add_rows(
                    basis, y, w, r0, r1, lo, hi, lo, True, False, gram, rhs, own, nz
                )
        for j in range(q):
            if edges[j] not in edges[:j]:
                _add_rows(
                    basis, y, w, edges[j], edges[j] + 1, 0, k, col - 4, False, True,
                    gram, rhs, own, nz,
                )  # fmt: skip
        _finish_energies(gram, rhs, keep, own, total, not split, out[i])


@njit(cache=True, nogil=True)
def _span_sums(basis, shared_w, w, y, r0, r1, lo, hi, gram, rhs):
    """Rows ``r0``..``r1`` whose columns are 0, 1 and ``lo``..``hi``: their
    terms of the Gram entries (a, b) with b in ``lo``..``hi`` (a ≥ b too: the
    lower triangle is ignored), weighted by ``shared_w``, and of the
    right-hand sides of ``lo``..``hi``, weighted by each channel's ``w``.
    Each entry is added in row order, ten entries at a time (two rows of
    the Gram matrix, or two channels, by five columns) in running sums that
    stay in registers and share their loads (``_energies`` adds to memory
    row by row). Columns up to b + 4 exist (four edge columns follow the
    tails); those from ``hi`` on are read, not written."""
    na = 2 + hi - lo
    for b in range(lo, hi, 5):
        for i in range(0, na, 2):
            a = i if i < 2 else lo + i - 2
            # (an odd last row of entries is summed twice, the same numbers)
            a2 = a if i + 1 == na else (i + 1 if i + 1 < 2 else lo + i - 1)
            s0, s1, s2 = gram[a, b], gram[a, b + 1], gram[a, b + 2]
            s3, s4 = gram[a, b + 3], gram[a, b + 4]
            t0, t1, t2 = gram[a2, b], gram[a2, b + 1], gram[a2, b + 2]
            t3, t4 = gram[a2, b + 3], gram[a2, b + 4]
            for r in range(r0, r1):
                x0, x1, x2 = basis[r, b], basis[r, b + 1], basis[r, b + 2]
                x3, x4 = basis[r, b + 3], basis[r, b + 4]
                ba = basis[r, a] * shared_w[r]
                s0 += ba * x0
                s1 += ba * x1
                s2 += ba * x2
                s3 += ba * x3
                s4 += ba * x4
                bb = basis[r, a2] * shared_w[r]
                t0 += bb * x0
                t1 += bb * x1
                t2 += bb * x2
                t3 += bb * x3
                t4 += bb * x4
            for j, v in enumerate((s0, s1, s2, s3, s4)):
                if b + j < hi:
                    gram[a, b + j] = v
            for j, v in enumerate((t0, t1, t2, t3, t4)):
                if b + j < hi:
                    gram[a2, b + j] = v
    shared = w.shape[1] == 1
    n_ch = y.shape[1]
    for a in range(lo, hi, 5):
        for c in range(0, n_ch, 2):
            c2 = c if c + 1 == n_ch else c + 1
            s0, s1, s2 = rhs[a, c], rhs[a + 1, c], rhs[a + 2, c]
            s3, s4 = rhs[a + 3, c], rhs[a + 4, c]
            t0, t1, t2 = rhs[a, c2], rhs[a + 1, c2], rhs[a + 2, c2]
            t3, t4 = rhs[a + 3, c2], rhs[a + 4, c2]
            for r in range(r0, r1):
                x0, x1, x2 = basis[r, a], basis[r, a + 1], basis[r, a + 2]
                x3, x4 = basis[r, a + 3], basis[r, a + 4]
                wr = w[r, 0 if shared else c]
                yr = y[r, c]
                s0 += (x0 * wr) * yr
                s1 += (x1 * wr) * yr
                s2 += (x2 * wr) * yr
                s3 += (x3 * wr) * yr
                s4 += (x4 * wr) * yr
                wr = w[r, 0 if shared else c2]
                yr = y[r, c2]
                t0 += (x0 * wr) * yr
                t1 += (x1 * wr) * yr
                t2 += (x2 * wr) * yr
                t3 += (x3 * wr) * yr
                t4 += (x4 * wr) * yr
            for j, v in enumerate((s0, s1, s2, s3, s4)):
                if a + j < hi:
                    rhs[a + j, c] = v
            for j, v in enumerate((t0, t1, t2, t3, t4)):
                if a + j < hi:
                    rhs[a + j, c2] = v


@njit(cache=True, nogil=True)
def _add_rows(basis, y, w, r0, r1, lo, hi, lowest, dense, every, gram, rhs, own, nz):
    """``_energies``' terms of rows ``r0``..``r1`` whose non-zero columns are
    among 0, 1 and ``lo``..``hi``: the Gram entries (a ≤ b) with b ≥
    ``lowest`` and the right-hand sides of the columns ≥ ``lowest``, into
    ``gram`` when every channel weights the row alike, else into each
    channel's ``own`` (returns whether any did). Zero columns are skipped as
    ``_energies`` skips them, but with ``dense`` the columns ``lo``..``hi``
    are all taken (a zero adds nothing to a finite sum). Without ``every``
    only the rows the channels weight differently, and only into ``own``."""
    n_ch = y.shape[1]
    split = False
    for r in range(r0, r1):
        m = 0
        for a in range(min(lo, 2)):
            if basis[r, a] != 0.0:
                nz[m] = a
                m += 1
        for a in range(lo, hi):
            if dense or basis[r, a] != 0.0:
                nz[m] = a
                m += 1
        alike = True
        for c in range(1, w.shape[1]):
            if w[r, c] != w[r, 0]:
                alike = False
        if alike:
            wr = w[r, 0]
            if wr == 0.0 or not every:
                continue
            for ia in range(m):
                a = nz[ia]
                ba = basis[r, a] * wr
                for b in range(max(a, lowest), hi):
                    if dense or basis[r, b] != 0.0:
                        gram[a, b] += ba * basis[r, b]
                if a >= lowest:
                    for c in range(n_ch):
                        rhs[a, c] += ba * y[r, c]
            continue
        split = True
        for c in range(n_ch):
            wr = w[r, c]
            if wr == 0.0:
                continue
            for ia in range(m):
                a = nz[ia]
                ba = basis[r, a] * wr
                for b in range(max(a, lowest), hi):
                    if dense or basis[r, b] != 0.0:
                        own[c, a, b] += ba * basis[r, b]
                if a >= lowest and every:
                    rhs[a, c] += ba * y[r, c]
    return split


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
def _median_of(v, lo, hi, scratch):
    """``_median_inplace(v)`` (the same value) of values with no NaN, ``lo``
    and ``hi`` their least and largest, by counting (``_ranked``)."""
    n = v.size
    h = n // 2
    if n % 2 == 1:
        return _ranked(v, h, False, lo, hi, scratch)[0]
    below, middle = _ranked(v, h - 1, True, lo, hi, scratch)
    return (below + middle) / 2


@njit(cache=True, nogil=True)
def _ranked(v, kth, both, lo, hi, scratch):
    """The ``kth`` smallest of ``v`` (no NaN; ``lo`` and ``hi`` its least
    and largest value) and, with ``both``, the next (else the same again), by
    counting: each value's bucket ⌊(v − lo) · scale⌋ of ~v.size / 8 equal
    buckets is monotone in the value, so those ranks are in the bucket(s)
    where the counts pass them, and only those few are selected among
    (Wirth's selection over all mispredicts a branch per value: 3× slower).
    The same values as ``_select`` by construction. ``scratch``: at least
    2 · v.size int32 (each value's bucket, then the counts). Reorders
    ``v`` only when it falls back to ``_select``."""
    n = v.size
    nb = n >> 3
    scale = nb / (hi - lo) if hi > lo else 0.0
    if nb < 16 or not np.isfinite(scale) or scale <= 0.0:
        # few values, all equal, a range beyond the doubles (an inf) or too
        # narrow for the buckets: Wirth's selection
        first = _select(v, kth)
        if not both:
            return first, first
        second = v[kth + 1]
        for i in range(kth + 2, n):
            if v[i] < second:
                second = v[i]
        return first, second
    slot = scratch[:n]
    counts = scratch[n : n + nb]
    counts[:] = 0
    for i in range(n):
        q = min(int((v[i] - lo) * scale), nb - 1)
        slot[i] = q
        counts[q] += 1
    # buckets b1 (of rank kth) to b2 (of the next), and the values before b1
    below = 0
    b1 = 0
    while below + counts[b1] <= kth:
        below += counts[b1]
        b1 += 1
    b2 = b1
    reach = below + counts[b1]
    while both and reach <= kth + 1:
        b2 += 1
        reach += counts[b2]
    buf = np.empty(reach - below)
    m = 0
    for i in range(n):
        if slot[i] >= b1 and slot[i] <= b2:
            buf[m] = v[i]
            m += 1
    first = _select(buf, kth - below)
    if not both:
        return first, first
    # the next rank: the least value after it (none after it is smaller)
    second = buf[kth - below + 1]
    for i in range(kth - below + 2, m):
        if buf[i] < second:
            second = buf[i]
    return first, second


@njit(cache=True, nogil=True)
def mad_columns(x, skip, out):
    """``out[c]`` = 1.4826 × median |v − median v| of column ``c`` of ``x``
    over the rows not in ``skip`` (n, c); inf when 8 rows or fewer remain."""
    n, n_ch = x.shape
    v = np.empty(n)
    scratch = np.empty(2 * n, dtype=np.int32)
    for c in range(n_ch):
        m = 0
        lo = np.inf
        hi = -np.inf
        nan = False
        for r in range(n):
            if not skip[r, c]:
                e = x[r, c]
                v[m] = e
                m += 1
                lo = min(lo, e)
                hi = max(hi, e)
                nan |= np.isnan(e)
        if m <= 8:
            out[c] = np.inf
            continue
        if nan:
            out[c] = np.nan
            continue
        mid = _median_of(v[:m], lo, hi, scratch)
        lo = np.inf
        hi = -np.inf
        for i in range(m):
            e = abs(v[i] - mid)
            v[i] = e
            lo = min(lo, e)
            hi = max(hi, e)
        out[c] = 1.4826 * _median_of(v[:m], lo, hi, scratch)


@njit(cache=True, nogil=True)
def median_abs_step(x, out):
    """``out[c]`` = median |x[r + 1, c] − x[r, c]| over the rows of ``x``."""
    n, n_ch = x.shape
    v = np.empty(max(n - 1, 0))
    scratch = np.empty(2 * v.size, dtype=np.int32)
    for c in range(n_ch):
        lo = np.inf
        hi = -np.inf
        nan = False
        for r in range(n - 1):
            e = abs(x[r + 1, c] - x[r, c])
            v[r] = e
            lo = min(lo, e)
            hi = max(hi, e)
            nan |= np.isnan(e)
        out[c] = np.nan if nan else _median_of(v, lo, hi, scratch)


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
    scratch = np.empty(2 * n, dtype=np.int32)
    for c in range(n_ch):
        m = 0
        nan = 0
        lo = np.inf
        hi = -np.inf
        for r in range(n):
            if w0[r, c] > 0:
                d = abs(y[r, c] - fitted[r, c])
                if np.isnan(d):
                    nan += 1
                else:
                    v[m] = d
                    m += 1
                    lo = min(lo, d)
                    hi = max(hi, d)
        mid = (counts[c] - 1) // 2
        if mid < m:
            mad = _ranked(v[:m], mid, False, lo, hi, scratch)[0]
        elif mid < n - nan:
            mad = np.inf
        else:
            mad = np.nan
        denominator = tukey_c * _max_nan(1.4826 * mad, floor[c])
        for r in range(n):
            q = abs(y[r, c] - fitted[r, c]) / denominator
            weights[r, c] = ((1 - q * q) * (1 - q * q) if q < 1 else 0.0) * w0[r, c]


@njit(cache=True, nogil=True)
def refill_edge(resid, i):
    """``artifact._refill_edges`` at the edge row ``i``: rows i − 1 and i
    replaced by the straight line from row i − 2 to row i + 1 (each value as
    numpy computes ``resid[a] + (resid[b] - resid[a]) * k / 3``); nothing
    where a row is off the array."""
    a = i - 2
    b = i + 1
    if a < 0 or b >= resid.shape[0]:
        return
    for k in range(1, 3):
        for c in range(resid.shape[1]):
            resid[i - 2 + k, c] = resid[a, c] + (resid[b, c] - resid[a, c]) * k / 3
