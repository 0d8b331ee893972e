"""Hypothesis properties of the stream decoder: round trip, chunking, corruption."""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    Ack,
    CameraTriggered,
    Data,
    MsgType,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    encode_message,
)
from firmware_bridge.protocol import _kernels as k

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
N_CH = 3


def stream_of(block_sizes, first=1000, events_every=3):
    """START ack, DATA frames (with camera events between), STOP ack."""
    rng = np.random.default_rng(len(block_sizes))
    frames, sent, seq, index = [], [], 0, first
    frames.append(encode_message(Ack(MsgType.START_STREAM, 0, first & 0xFFFFFFFF), seq))
    for i, n in enumerate(block_sizes):
        seq = (seq + 1) & 0xFF
        block = rng.integers(-3000, 3000, (n, N_CH), dtype=np.int16)
        frames.append(encode_message(Data(index & 0xFFFFFFFF, block), seq))
        sent.append((index, block))
        index += n
        if i % events_every == 0:
            seq = (seq + 1) & 0xFF
            frames.append(encode_message(CameraTriggered(index & 0xFFFFFFFF, i), seq))
    seq = (seq + 1) & 0xFF
    stop = encode_message(Ack(MsgType.STOP_STREAM, 0, index & 0xFFFFFFFF), seq)
    return frames, stop, sent, index


def decode(data: bytes, cuts) -> tuple[StreamDecoder, dict[int, np.ndarray], list]:
    dec = StreamDecoder(N_CH)
    got: dict[int, np.ndarray] = {}
    messages = []
    pos = 0
    for cut in [*sorted(cuts), len(data)]:
        out = dec.feed(data[pos:cut])
        pos = max(pos, cut)
        for first, row, n in out.blocks:
            for j in range(n):
                got[int(first) + j] = out.samples[row + j]
        messages += out.messages
    return dec, got, messages


blocks = st.lists(st.integers(1, 120), min_size=1, max_size=25)


@SETTINGS
@given(data=st.binary(max_size=600))
def test_cobs_round_trip_never_contains_zero(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


@SETTINGS
@given(sizes=blocks, cuts=st.lists(st.integers(0, 20_000), max_size=12))
def test_clean_stream_round_trips_whatever_the_chunking(sizes, cuts):
    frames, stop, sent, end = stream_of(sizes)
    data = b"".join(frames) + stop
    dec, got, messages = decode(data, [c % (len(data) + 1) for c in cuts])
    c = dec.counters
    assert c.samples_received == end - 1000 and c.samples_lost == 0
    for first, block in sent:
        np.testing.assert_array_equal(
            np.stack([got[first + j] for j in range(len(block))]), block
        )
    assert [m.trigger_count for m in messages if isinstance(m, CameraTriggered)] == [
        i for i in range(len(sizes)) if i % 3 == 0
    ]


@SETTINGS
@given(
    sizes=blocks,
    damage=st.lists(
        st.tuples(
            st.sampled_from(
                ["flip", "drop", "dup_byte", "dup_frame", "truncate", "garbage"]
            ),
            st.integers(0, 10_000),
            st.integers(0, 255),
        ),
        max_size=8,
    ),
)
def test_corruption_never_crashes_and_accounts_for_every_sample(sizes, damage):
    frames, stop, sent, end = stream_of(sizes)
    for kind, where, value in damage:
        i = 1 + where % (len(frames) - 1)  # keep the START ack: it bounds the stream
        frame = bytearray(frames[i])
        at = value % len(frame)
        if kind == "flip":
            frame[at] ^= 1 << (value % 8)
        elif kind == "drop":
            del frame[at]
        elif kind == "dup_byte":
            frame.insert(at, frame[at])
        elif kind == "dup_frame":
            frame = frame + frame
        elif kind == "truncate":
            frame = frame[: max(1, at)] + b"\x00"
        else:
            frame[at:at] = np.random.default_rng(value).bytes(4096)
        frames[i] = bytes(frame)
    data = b"".join(frames) + stop
    dec, got, _ = decode(data, [len(data) // 3, 2 * len(data) // 3])
    c = dec.counters
    assert c.samples_received + c.samples_lost == end - 1000
    truth = {first + j: block[j] for first, block in sent for j in range(len(block))}
    assert len(got) == c.samples_received
    for number, row in got.items():
        np.testing.assert_array_equal(row, truth[number])


def test_recovers_after_4kb_garbage_inside_one_frame():
    frames, stop, sent, end = stream_of([50] * 6)
    victim = bytearray(frames[3])
    victim[5:5] = bytes(range(1, 256)) * 16 + b"\x00\x07\x00"  # 4 kB with delimiters
    frames[3] = bytes(victim)
    dec, got, _ = decode(b"".join(frames) + stop, [])
    lost_block = (
        1  # frames[3] is the second DATA frame (frames: ack, data, event, data)
    )
    assert dec.counters.samples_lost == len(sent[lost_block][1])
    assert sorted(got)[-1] == end - 1


def test_u32_wrap_keeps_sample_numbers_monotonic():
    frames, stop, _, end = stream_of([100] * 10, first=2**32 - 450)
    dec, got, _ = decode(b"".join(frames) + stop, [777])
    numbers = sorted(got)
    assert numbers[0] == 2**32 - 450 and numbers[-1] == end - 1 > 2**32
    assert dec.counters.samples_lost == 0


def test_numba_kernels_match_python_references_on_seeded_data():
    rng = np.random.default_rng(7)
    for _ in range(50):
        raw = rng.integers(0, 256, rng.integers(0, 3000), dtype=np.uint8)
        assert k.crc32(raw, 0, raw.size, k.CRC_TABLES) == zlib.crc32(raw.tobytes())
        encoded = np.frombuffer(cobs_encode(raw.tobytes()), dtype=np.uint8)
        out = np.empty(raw.size + 10, dtype=np.uint8)
        n = k.cobs_decode_into(encoded, 0, encoded.size, out, 0)
        assert out[:n].tobytes() == raw.tobytes()
