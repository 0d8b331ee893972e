"""Numba kernels of the stream decoder. Arrays and scalars in, no allocation inside.

Their plain-Python references are zlib (CRC) and ``framing.cobs_decode``;
tests/firmware_bridge/test_stream_properties.py compares them on seeded data.
DATA frames whose sample numbers are not plausible (``plausible_first``) are left
to the caller (stream.py), which decides whether they are corrupt.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Piece status codes written by split_frames.
OK = 0
BAD_COBS = 1
TOO_SHORT = 2
BAD_CRC = 3
TOO_LONG = 4

# Indices into the decoder's int64 state vector (shared with stream.py).
S_HAVE_EXPECTED = 0  # 1 when the next sample index is known
S_EXPECTED = 1  # unwrapped index of the next sample we expect
S_RECEIVED = 2  # samples delivered to the caller
S_LOST = 3  # samples reported lost (gaps in sample indices)
S_DUPLICATE = 4  # samples of DATA frames dropped as already received
S_WRONG_CHANNELS = 5  # DATA frames with a channel count other than configured
S_MALFORMED = 6  # DATA frames whose length does not match their header
S_N_GAPS = 7  # gap records written to the gap arrays (this call)
S_HAVE_REF = 8  # 1 when S_REF holds a sample index seen on the wire
S_REF = 9  # last unwrapped sample index seen, for unwrapping u32 indices
S_OFFSET = 10  # host index of the board's sample 0 (moves on a board reboot)
S_HAVE_SEQ = 11  # 1 when S_EXPECTED_SEQ is known
S_EXPECTED_SEQ = 12  # seq byte expected on the next device frame
S_FRAMES_LOST = 13  # device frames missing from the seq sequence
S_FRAMES_DUPLICATE = 14  # exact repeats of the previous frame (dropped)
S_FRAMES_OUT_OF_ORDER = 15  # seq jumped backwards (resynchronised)
S_HAVE_HIGH = 16  # 1 when S_HIGH is known
S_HIGH = 17  # sample number after the newest sample delivered (never decreases)
S_MAX_JUMP = 18  # largest forward jump of the sample numbers taken as frames lost
S_DIVERT = 19  # 1 while the caller holds a suspect frame: it sees every DATA frame
STATE_SIZE = 20

MSG_DATA = 0x90
MSG_BOOT = 0x95
DATA_HEADER = 2 + 7  # type, seq, first_sample_index u32, n_channels u8, n_samples u16
HALF_RANGE = 1 << 31
WRAP = 1 << 32


def make_crc_tables() -> np.ndarray:
    """Slicing-by-8 tables for the reflected CRC-32 (polynomial 0xEDB88320)."""
    tables = np.zeros((8, 256), dtype=np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        tables[0, i] = c
    for k in range(1, 8):
        for i in range(256):
            prev = tables[k - 1, i]
            tables[k, i] = (prev >> 8) ^ tables[0, prev & 0xFF]
    return tables


CRC_TABLES = make_crc_tables()


@njit(cache=True, nogil=True)
def crc32(buf, start, end, tables):
    """CRC-32 (zlib.crc32) of ``buf[start:end]``, slicing by 8 bytes."""
    crc = 0xFFFFFFFF
    i = start
    while i + 8 <= end:
        one = (
            np.int64(buf[i])
            | (np.int64(buf[i + 1]) << 8)
            | (np.int64(buf[i + 2]) << 16)
            | (np.int64(buf[i + 3]) << 24)
        ) ^ crc
        crc = (
            tables[7, one & 0xFF]
            ^ tables[6, (one >> 8) & 0xFF]
            ^ tables[5, (one >> 16) & 0xFF]
            ^ tables[4, (one >> 24) & 0xFF]
            ^ tables[3, buf[i + 4]]
            ^ tables[2, buf[i + 5]]
            ^ tables[1, buf[i + 6]]
            ^ tables[0, buf[i + 7]]
        )
        i += 8
    while i < end:
        crc = tables[0, (crc ^ buf[i]) & 0xFF] ^ (crc >> 8)
        i += 1
    return crc ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def cobs_decode_into(buf, start, end, out, out_start):
    """COBS-decode ``buf[start:end]`` into ``out[out_start:]``; return length or -1."""
    i = start
    o = out_start
    while i < end:
        code = buf[i]
        if code == 0:
            return -1
        i += 1
        count = code - 1
        if i + count > end:
            return -1
        out[o : o + count] = buf[i : i + count]
        o += count
        i += count
        if code < 0xFF and i < end:
            out[o] = 0
            o += 1
    return o - out_start


@njit(cache=True, nogil=True)
def split_frames(buf, n, body, starts, lengths, status, max_encoded, tables):
    """Split ``buf[:n]`` at 0x00 delimiters, COBS-decode and CRC-check each piece.

    Writes, per non-empty piece, the offset of its decoded body in ``body``, the
    body length without the CRC, and a status code. Returns ``(n_pieces,
    consumed, n_ok, body_fill)``: bytes after the last delimiter are not consumed
    (a partial frame); ``body_fill`` is the total length of the valid bodies.
    """
    n_ok = 0
    n_pieces = 0
    body_fill = 0
    piece_start = 0
    consumed = 0
    for i in range(n):
        if buf[i] != 0:
            continue
        if i > piece_start:
            starts[n_pieces] = body_fill
            lengths[n_pieces] = 0
            if i - piece_start > max_encoded:
                status[n_pieces] = TOO_LONG
            else:
                length = cobs_decode_into(buf, piece_start, i, body, body_fill)
                if length < 0:
                    status[n_pieces] = BAD_COBS
                elif length < 6:
                    status[n_pieces] = TOO_SHORT
                else:
                    end = body_fill + length - 4
                    want = (
                        np.int64(body[end])
                        | (np.int64(body[end + 1]) << 8)
                        | (np.int64(body[end + 2]) << 16)
                        | (np.int64(body[end + 3]) << 24)
                    )
                    if crc32(body, body_fill, end, tables) != want:
                        status[n_pieces] = BAD_CRC
                    else:
                        status[n_pieces] = OK
                        n_ok += 1
                        lengths[n_pieces] = length - 4
                        body_fill += length - 4
            n_pieces += 1
        piece_start = i + 1
        consumed = i + 1
    return n_pieces, consumed, n_ok, body_fill


@njit(cache=True, nogil=True)
def unwrap_index(wire, state):
    """Map a 32-bit wire sample index to the nearest unwrapped index."""
    if state[S_HAVE_EXPECTED] == 1:
        ref = state[S_EXPECTED]
    elif state[S_HAVE_REF] == 1:
        ref = state[S_REF]
    else:
        return wire
    d = (wire - ((ref - state[S_OFFSET]) & 0xFFFFFFFF)) & 0xFFFFFFFF
    if d >= HALF_RANGE:
        d -= WRAP
    return ref + d


@njit(cache=True, nogil=True)
def plausible_first(first, state):
    """Whether a DATA block starting at host sample ``first`` can be the next one.

    It must not start before the next sample expected (or, with none expected,
    before what was already delivered), nor jump more than ``S_MAX_JUMP`` ahead.
    """
    if state[S_HAVE_EXPECTED] == 1:
        ref = state[S_EXPECTED]
    elif state[S_HAVE_HIGH] == 1:
        ref = state[S_HIGH]
    else:
        return True
    return ref <= first and first - ref <= state[S_MAX_JUMP]


@njit(cache=True, nogil=True)
def extract_data(
    body,
    starts,
    lengths,
    status,
    first_piece,
    n_pieces,
    n_channels,
    state,
    out_bytes,
    out_fill,
    block_table,
    n_blocks,
    gap_table,
):
    """Copy samples of consecutive valid DATA frames into ``out_samples``.

    ``out_bytes`` is the little-endian int16 sample buffer viewed as uint8.
    Starts at piece ``first_piece`` and stops at the first valid piece that is not
    a DATA frame, or is a DATA frame whose sample numbers are not plausible or
    arrives while the caller holds a suspect frame (the caller handles it, in
    order, then calls again from the next piece). Every valid frame except BOOT
    passes the seq check first. Corrupt pieces are skipped (the caller counts
    them). Returns ``(next_piece, out_fill, n_blocks)``; blocks are
    ``(first_sample, row, n)`` rows in ``block_table``, gaps ``(first_sample,
    n_lost)`` rows in ``gap_table`` (count in state).
    """
    p = first_piece
    while p < n_pieces:
        if status[p] != OK:
            p += 1
            continue
        s = starts[p]
        msg_type = body[s]
        if msg_type == MSG_BOOT:
            return p, out_fill, n_blocks  # the caller resets the counters
        seq = np.int64(body[s + 1])
        if state[S_HAVE_SEQ] == 1:
            seq_gap = (seq - state[S_EXPECTED_SEQ]) & 0xFF
            if seq_gap == 255:  # the previous frame again: drop the copy
                state[S_FRAMES_DUPLICATE] += 1
                p += 1
                continue
            if seq_gap >= 128:
                state[S_FRAMES_OUT_OF_ORDER] += 1
            else:
                state[S_FRAMES_LOST] += seq_gap
        state[S_EXPECTED_SEQ] = (seq + 1) & 0xFF
        state[S_HAVE_SEQ] = 1
        if msg_type != MSG_DATA:
            return p, out_fill, n_blocks
        length = lengths[p]
        if length < DATA_HEADER:
            state[S_MALFORMED] += 1
            p += 1
            continue
        wire = (
            np.int64(body[s + 2])
            | (np.int64(body[s + 3]) << 8)
            | (np.int64(body[s + 4]) << 16)
            | (np.int64(body[s + 5]) << 24)
        )
        ch = np.int64(body[s + 6])
        ns = np.int64(body[s + 7]) | (np.int64(body[s + 8]) << 8)
        if length != DATA_HEADER + 2 * ch * ns:
            state[S_MALFORMED] += 1
            p += 1
            continue
        if ch != n_channels:
            state[S_WRONG_CHANNELS] += 1
            p += 1
            continue
        if ns == 0:  # an empty block carries no samples and moves nothing
            p += 1
            continue
        first = unwrap_index(wire, state)
        if state[S_DIVERT] == 1 or not plausible_first(first, state):
            return p, out_fill, n_blocks
        if state[S_HAVE_EXPECTED] == 1:
            expected = state[S_EXPECTED]
            if first > expected:
                g = state[S_N_GAPS]
                gap_table[g, 0] = expected
                gap_table[g, 1] = first - expected
                state[S_N_GAPS] = g + 1
                state[S_LOST] += first - expected
        src = s + DATA_HEADER
        dst = 2 * ch * out_fill
        n_bytes = 2 * ch * ns
        out_bytes[dst : dst + n_bytes] = body[src : src + n_bytes]
        block_table[n_blocks, 0] = first
        block_table[n_blocks, 1] = out_fill
        block_table[n_blocks, 2] = ns
        n_blocks += 1
        out_fill += ns
        state[S_RECEIVED] += ns
        state[S_EXPECTED] = first + ns
        state[S_HAVE_EXPECTED] = 1
        state[S_REF] = first + ns
        state[S_HAVE_REF] = 1
        state[S_HIGH] = first + ns
        state[S_HAVE_HIGH] = 1
        p += 1
    return p, out_fill, n_blocks
