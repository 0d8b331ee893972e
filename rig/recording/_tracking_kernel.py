"""tracking.jsonl parsed in one Numba pass: the lines exactly as the writer
writes them (``_writer._tracking_line``), straight into arrays.

A minute at 60 fps is 4.5 MB of JSON; ``json.loads`` and the conversion of its
lists to arrays take ~50 ms, this ~7 ms. Anything else (another key order,
spaces, a torn line, ``true``, a number of more than 18 digits or whose digits
make an integer above 2^53, a decimal exponent beyond ±22, an integer where a
whole number is wanted, lists of different widths) is not parsed here: the
caller falls back to the JSON reader, which reads it or says which line is
wrong. Imported on first use (numba is not loaded by ``import rig``).

Numbers: the JSON reader's are Python floats (correctly rounded). A number whose
digits make an integer m ≤ 2^53, with a power of ten 10^e, |e| ≤ 22: both are
exact in float64, so one IEEE multiplication or division gives the correctly
rounded value: the same float (Clinger's fast path).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0**k for k in range(23)])  # each exact in float64
_EXACT = 2**53  # every integer up to it is exact in float64

_HEAD = b'{"frame_index":'
_SAMPLE = b',"sample":'
_POSITIONS = b',"positions_mm":['
_REGIONS = b'],"region_displacement_mm":['
_BODY = b'],"body_displacement_mm":'
_NULL = b"null"


def _bytes(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8).copy()


_KEYS = tuple(_bytes(k) for k in (_HEAD, _SAMPLE, _POSITIONS, _REGIONS, _BODY, _NULL))


@njit(cache=True, nogil=True)
def _literal(buf, i, word):
    """Position after ``word`` if it starts at ``i``, else -1."""
    if i + word.size > buf.size:
        return -1
    for k in range(word.size):
        if buf[i + k] != word[k]:
            return -1
    return i + word.size


@njit(cache=True, nogil=True)
def _whole(buf, i):
    """(value, next position) of a whole number ≥ 0 at ``i`` (at most 18
    digits, no leading zero); next position -1 if there is none."""
    n = buf.size
    j = i
    value = 0
    while j < n and 48 <= buf[j] <= 57:
        value = value * 10 + (buf[j] - 48)
        j += 1
    if j == i or j - i > 18 or (buf[i] == 48 and j - i > 1):
        return 0, -1
    return value, j


@njit(cache=True, nogil=True, inline="always")
def _number(buf, i, pow10):
    """(value, next position) of a JSON number or ``null`` (NaN) at ``i``;
    next position -1 if it is neither, or beyond the exact fast path.
    Inlined into the loops that call it (a call per number was a third of the
    parse)."""
    n = buf.size
    if i >= n:
        return 0.0, -1
    if buf[i] == 110:  # "null"
        if i + 4 <= n and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
            return np.nan, i + 4
        return 0.0, -1
    negative = buf[i] == 45  # "-"
    start = i + 1 if negative else i
    j = start
    mantissa = 0
    while j < n:
        d = np.int64(buf[j]) - 48
        if d < 0 or d > 9:
            break
        mantissa = mantissa * 10 + d
        j += 1
    if j == start or (buf[start] == 48 and j - start > 1):
        return 0.0, -1  # no digits, or a leading zero
    n_digits = j - start
    exponent = 0
    whole = True  # JSON's integer: the reader's int, then float ("-0" is 0)
    if j < n and buf[j] == 46:  # "."
        whole = False
        frac = j + 1
        j = frac
        while j < n:
            d = np.int64(buf[j]) - 48
            if d < 0 or d > 9:
                break
            mantissa = mantissa * 10 + d
            j += 1
        if j == frac:
            return 0.0, -1
        n_digits += j - frac
        exponent = frac - j
    if j < n and (buf[j] == 101 or buf[j] == 69):  # "e", "E"
        whole = False
        j += 1
        sign = 1
        if j < n and (buf[j] == 43 or buf[j] == 45):
            sign = -1 if buf[j] == 45 else 1
            j += 1
        e0 = j
        e = 0
        while j < n:
            d = np.int64(buf[j]) - 48
            if d < 0 or d > 9:
                break
            e = e * 10 + d
            j += 1
        if j == e0 or j - e0 > 4:
            return 0.0, -1
        exponent += sign * e
    # At most 18 digits: no wrap; at most 2^53: exact in float64.
    if n_digits > 18 or mantissa > _EXACT:
        return 0.0, -1
    if whole:
        return float(-mantissa if negative else mantissa), j
    if exponent >= 0:
        if exponent > 22:
            return 0.0, -1
        value = float(mantissa) * pow10[exponent]
    else:
        if exponent < -22:
            return 0.0, -1
        value = float(mantissa) / pow10[-exponent]
    return (-value if negative else value), j


@njit(cache=True, nogil=True, inline="always")
def _list(buf, i, pow10, out, row):
    """Parse numbers up to ``]`` into ``out[row]`` (or count them when ``row``
    < 0). (count, position of the ``]``); position -1 if malformed."""
    n = buf.size
    count = 0
    if i < n and buf[i] == 93:  # "]": an empty list
        return 0, i
    while True:
        value, j = _number(buf, i, pow10)
        if j < 0:
            return 0, -1
        if row >= 0:
            if count >= out.shape[1]:
                return 0, -1
            out[row, count] = value
        count += 1
        if j < n and buf[j] == 44:  # ","
            i = j + 1
        elif j < n and buf[j] == 93:
            return count, j
        else:
            return 0, -1


@njit(cache=True, nogil=True)
def parse_tracking(buf, keys, pow10, n_lines, width, n_regions):
    """Every line of ``buf`` (tracking.jsonl's bytes) into arrays:
    (ok, frame_index, sample (-1 for null), positions, regions, body).

    ``n_lines``: the number of non-empty lines; ``width`` and ``n_regions``: the
    list lengths of the first line (``list_widths``), which every line must
    have. ``ok`` False: a line is not as the writer writes it (see the
    module's docstring)."""
    head, sample_key, positions_key, regions_key, body_key, null = keys
    index = np.empty(n_lines, dtype=np.int64)
    sample = np.empty(n_lines, dtype=np.int64)
    positions = np.empty((n_lines, width))
    regions = np.empty((n_lines, n_regions))
    body = np.empty(n_lines)
    n = buf.size
    i = 0
    row = 0
    while i < n:
        if buf[i] == 10:  # an empty line
            i += 1
            continue
        if row >= n_lines:
            return False, index, sample, positions, regions, body
        i = _literal(buf, i, head)
        if i < 0:
            return False, index, sample, positions, regions, body
        index[row], i = _whole(buf, i)
        if i < 0:
            return False, index, sample, positions, regions, body
        i = _literal(buf, i, sample_key)
        if i < 0:
            return False, index, sample, positions, regions, body
        j = _literal(buf, i, null)
        if j >= 0:
            sample[row], i = -1, j
        else:
            sample[row], i = _whole(buf, i)
            if i < 0:
                return False, index, sample, positions, regions, body
        i = _literal(buf, i, positions_key)
        if i < 0:
            return False, index, sample, positions, regions, body
        count, i = _list(buf, i, pow10, positions, row)
        if i < 0 or count != width:
            return False, index, sample, positions, regions, body
        i = _literal(buf, i, regions_key)
        if i < 0:
            return False, index, sample, positions, regions, body
        count, i = _list(buf, i, pow10, regions, row)
        if i < 0 or count != n_regions:
            return False, index, sample, positions, regions, body
        i = _literal(buf, i, body_key)
        if i < 0:
            return False, index, sample, positions, regions, body
        body[row], i = _number(buf, i, pow10)
        if i < 0 or i >= n or buf[i] != 125:  # "}"
            return False, index, sample, positions, regions, body
        i += 1
        if i < n and buf[i] != 10:  # the line must end here
            return False, index, sample, positions, regions, body
        row += 1
    return row == n_lines, index, sample, positions, regions, body


@njit(cache=True, nogil=True)
def list_widths(buf, keys, pow10):
    """(non-empty lines, positions' and regions' list lengths on the first
    line); lengths -1 when the first line is not as the writer writes it."""
    head, sample_key, positions_key, regions_key, _, null = keys
    n = buf.size
    lines = 0
    at_start = True
    for i in range(n):
        if buf[i] == 10:
            at_start = True
        elif at_start:
            lines += 1
            at_start = False
    i = 0
    while i < n and buf[i] == 10:
        i += 1
    dummy = np.empty((0, 0))
    i = _literal(buf, i, head)
    if i < 0:
        return lines, -1, -1
    _, i = _whole(buf, i)
    if i < 0:
        return lines, -1, -1
    i = _literal(buf, i, sample_key)
    if i < 0:
        return lines, -1, -1
    j = _literal(buf, i, null)
    if j >= 0:
        i = j
    else:
        _, i = _whole(buf, i)
        if i < 0:
            return lines, -1, -1
    i = _literal(buf, i, positions_key)
    if i < 0:
        return lines, -1, -1
    width, i = _list(buf, i, pow10, dummy, -1)
    if i < 0:
        return lines, -1, -1
    i = _literal(buf, i, regions_key)
    if i < 0:
        return lines, -1, -1
    n_regions, i = _list(buf, i, pow10, dummy, -1)
    if i < 0:
        return lines, -1, -1
    return lines, width, n_regions


def read_tracking_bytes(
    data: bytes,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(frame_index, sample (-1: null), positions_mm, region_displacement_mm,
    body_displacement_mm) of every non-empty line, in file order; None when
    any line is not exactly as the writer writes it."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        return None
    lines, width, n_regions = list_widths(buf, _KEYS, _POW10)
    if width < 0 or n_regions < 0:
        return None
    ok, index, sample, positions, regions, body = parse_tracking(
        buf, _KEYS, _POW10, lines, width, n_regions
    )
    if not ok:
        return None
    return index, sample, positions, regions, body
