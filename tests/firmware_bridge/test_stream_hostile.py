"""The decoder against frames with a good CRC and impossible contents.

A DATA block behind the samples already received, or far ahead of the next one
expected, is corruption however good its CRC: it is dropped, counted and reported
(``StreamAnomaly``), and the real data after it is delivered as usual. Delivered
sample numbers only ever increase, so a ring buffer keyed by them never refuses a
block.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    Ack,
    Data,
    MsgType,
    StreamAnomaly,
    StreamDecoder,
    encode_frame,
    encode_message,
)
from firmware_bridge.protocol.stream import MAX_JUMP_SAMPLES

N_CH = 3
WRAP = 1 << 32
START_SEQ, STOP_SEQ = 200, 201  # the host's seqs of START_STREAM and STOP_STREAM


def block(first: int, n: int) -> np.ndarray:
    """Samples whose values encode their own sample number (checkable)."""
    numbers = np.arange(first, first + n, dtype=np.int64)
    values = (numbers * 7 + np.arange(N_CH)[:, None]).T % 30_000
    return values.astype(np.int16)


class Wire:
    """Builds board->host bytes with one running seq, like a board's transmitter."""

    def __init__(self) -> None:
        self.seq = 0
        self.frames: list[bytes] = []

    def add(self, message) -> None:
        self.frames.append(encode_message(message, self.seq))
        self.seq = (self.seq + 1) & 0xFF

    def raw(self, msg_type: int, payload: bytes) -> None:
        self.frames.append(encode_frame(msg_type, self.seq, payload))
        self.seq = (self.seq + 1) & 0xFF

    def data(self, first: int, n: int) -> None:
        self.add(Data(first % WRAP, block(first, n)))

    def bytes(self) -> bytes:
        return b"".join(self.frames)


def run(data: bytes, decoder: StreamDecoder, cuts=()):
    """Feed ``data`` in pieces; return {sample number: row}, messages, blocks."""
    got: dict[int, np.ndarray] = {}
    messages, blocks = [], []
    pos = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out = decoder.feed(data[pos:cut])
        pos = max(pos, cut)
        for first, row, n in out.blocks:
            blocks.append((int(first), int(n)))
            for j in range(n):
                got[int(first) + j] = out.samples[row + j]
        messages += out.messages
    return got, messages, blocks


def assert_truthful(got: dict[int, np.ndarray], blocks) -> None:
    for number, row in got.items():
        np.testing.assert_array_equal(row, block(number, 1)[0])
    ends = [first + n for first, n in blocks]
    starts = [first for first, _ in blocks]
    assert all(s >= e for s, e in zip(starts[1:], ends[:-1], strict=False))


def decoder() -> StreamDecoder:
    dec = StreamDecoder(N_CH, check_acks=True)
    dec.expect_ack(START_SEQ, MsgType.START_STREAM)
    dec.expect_ack(STOP_SEQ, MsgType.STOP_STREAM)
    return dec


def anomalies(messages, kind=None):
    return [
        m
        for m in messages
        if isinstance(m, StreamAnomaly) and (kind is None or m.kind == kind)
    ]


def test_one_frame_2_to_the_30_ahead_is_dropped_and_later_data_kept():
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, START_SEQ, 1000))
    wire.data(1000, 100)
    wire.data(1100 + 2**30, 100)  # good CRC, impossible jump
    for i in range(10):
        wire.data(1100 + 100 * i, 100)
    wire.add(Ack(MsgType.STOP_STREAM, STOP_SEQ, 2100))
    dec = decoder()
    got, messages, blocks = run(wire.bytes(), dec)
    c = dec.counters
    assert c.samples_received == 1100 and c.samples_lost == 0
    assert c.frames_implausible == 1 and c.samples_duplicate == 0
    assert sorted(got) == list(range(1000, 2100))
    assert_truthful(got, blocks)
    [report] = anomalies(messages)
    assert report.kind == "ahead" and report.claimed_index == 1100 + 2**30
    assert report.sample_index == 1100


def test_a_forged_start_ack_and_a_block_behind_what_was_received():
    # Without the link's ACK check: a START_STREAM ACK claiming an earlier start,
    # then a DATA block with numbers already received. Neither moves the stream.
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, 0, 5000))
    wire.data(5000, 200)
    wire.add(Ack(MsgType.START_STREAM, 0, 100))  # forged: before received data
    wire.data(5100, 200)  # forged: behind (its numbers were received)
    wire.data(5200, 200)
    wire.add(Ack(MsgType.STOP_STREAM, 0, 5400))
    dec = StreamDecoder(N_CH)
    got, messages, blocks = run(wire.bytes(), dec)
    c = dec.counters
    assert sorted(got) == list(range(5000, 5400)) and c.samples_lost == 0
    assert c.frames_implausible == 2 and c.samples_duplicate == 200
    assert [m.kind for m in anomalies(messages)] == ["ack", "behind"]
    assert_truthful(got, blocks)


def test_a_forged_start_ack_ahead_is_overruled_by_two_agreeing_frames():
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, 0, 5000))
    wire.data(5000, 200)
    wire.add(Ack(MsgType.STOP_STREAM, 0, 5200))
    wire.add(Ack(MsgType.START_STREAM, 0, 5200 + 2**29))  # wrong start
    for i in range(5):
        wire.data(6000 + 200 * i, 200)
    wire.add(Ack(MsgType.STOP_STREAM, 0, 7000))
    dec = StreamDecoder(N_CH)
    got, messages, blocks = run(wire.bytes(), dec, cuts=[150])
    c = dec.counters
    assert sorted(got) == list(range(5000, 5200)) + list(range(6000, 7000))
    assert c.samples_lost == 0 and c.stream_resyncs == 1
    [resync] = anomalies(messages)
    assert resync.kind == "resync" and resync.claimed_index == 6000
    assert_truthful(got, blocks)


def test_an_unsolicited_stop_ack_cannot_end_the_stream_or_invent_a_gap():
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, START_SEQ, 0))
    wire.data(0, 100)
    wire.add(Ack(MsgType.STOP_STREAM, 17, 90_000))  # the host sent no seq 17
    wire.data(100, 100)
    wire.add(Ack(MsgType.STOP_STREAM, STOP_SEQ, 200))
    dec = decoder()
    got, messages, _ = run(wire.bytes(), dec)
    c = dec.counters
    assert c.samples_received == 200 and c.samples_lost == 0
    assert c.frames_implausible == 1
    [report] = anomalies(messages)
    assert report.kind == "ack" and "seq 17" in report.message


def test_a_real_jump_beyond_max_jump_is_held_then_confirmed_with_its_gap():
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, 0, 0))
    wire.data(0, 100)
    wire.data(50_100, 100)  # 50 000 samples lost on the board: held
    wire.data(50_200, 100)  # continues it: confirmed
    wire.data(50_300, 100)
    wire.data(90_000, 100)  # last block, also a long jump: the STOP ACK confirms
    wire.add(Ack(MsgType.STOP_STREAM, 0, 90_100))
    dec = StreamDecoder(N_CH, max_jump=10_000)
    got, messages, blocks = run(wire.bytes(), dec, cuts=[300])
    c = dec.counters
    assert c.samples_received == 500 and c.frames_implausible == 0
    assert c.samples_lost == 50_000 + (90_000 - 50_400)
    assert c.stream_resyncs == 2
    assert [m.kind for m in anomalies(messages)] == ["resync", "resync"]
    assert_truthful(got, blocks)


def test_empty_data_blocks_move_nothing():
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, 0, 0))
    wire.data(0, 10)
    wire.raw(MsgType.DATA, struct.pack("<IBH", 2**31 - 5, N_CH, 0))
    wire.data(10, 10)
    wire.add(Ack(MsgType.STOP_STREAM, 0, 20))
    dec = StreamDecoder(N_CH)
    run(wire.bytes(), dec)
    c = dec.counters
    assert c.samples_received == 20 and c.samples_lost == 0
    assert c.frames_implausible == 0


# ------------------------------------------------------------------ fuzz

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

hostile_frame = st.one_of(
    st.tuples(st.just("behind"), st.integers(1, 2**31 - 1), st.integers(1, 60)),
    st.tuples(
        st.just("ahead"),
        st.integers(MAX_JUMP_SAMPLES + 1, 2**31 - 1),
        st.integers(1, 60),
    ),
    st.tuples(
        st.just("ack"),
        st.sampled_from([MsgType.START_STREAM, MsgType.STOP_STREAM, MsgType.HELLO]),
        st.integers(0, WRAP - 1),
        st.integers(0, 199),
    ),
    # Any other type, any payload: events with random sample indices, NAKs
    # with out-of-range values, replies, unknown types, wrong lengths.
    st.tuples(
        st.just("random"),
        st.integers(0, 255).filter(lambda t: t not in (MsgType.DATA, MsgType.BOOT)),
        st.binary(max_size=48),
    ),
)


@FUZZ
@given(
    start=st.integers(0, WRAP - 1),
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=20),
    hostile=st.lists(st.tuples(st.integers(0, 40), hostile_frame), max_size=12),
    cuts=st.lists(st.integers(0, 50_000), max_size=6),
)
def test_fuzz_hostile_frames_with_good_crc_never_cost_real_data(
    start, sizes, hostile, cuts
):
    """Valid frames with impossible contents, among a clean stream: nothing
    escapes, every real sample arrives with its number, every impossible
    block or stream ACK is counted once and reported."""
    wire = Wire()
    wire.add(Ack(MsgType.START_STREAM, START_SEQ, start % WRAP))
    where: dict[int, list] = {}
    for slot, frame in hostile:
        where.setdefault(slot % (len(sizes) + 1), []).append(frame)
    position = start
    expected_implausible = 0
    for i in range(len(sizes) + 1):
        held_end = None  # end of the hostile block just sent
        for frame in where.get(i, []):
            kind = frame[0]
            if kind in ("behind", "ahead"):
                _, distance, n = frame
                first = position - distance if kind == "behind" else position + distance
                # Not lined up with the next real block (or the STOP ACK), nor
                # continuing the previous hostile block: two frames that agree
                # are the board's word, and are tested above.
                if first + n == position:
                    first -= 1
                if first == held_end:
                    first -= 1
                wire.data(first, n)
                held_end = first + n
                expected_implausible += 1
            elif kind == "ack":
                _, cmd_type, index, cmd_seq = frame
                wire.add(Ack(cmd_type, cmd_seq, index))
                expected_implausible += cmd_type != MsgType.HELLO
            else:
                _, msg_type, payload = frame
                if msg_type == MsgType.ACK and len(payload) == 6:
                    payload = bytes([payload[0], payload[1] % 200]) + payload[2:]
                    expected_implausible += payload[0] in (
                        MsgType.START_STREAM,
                        MsgType.STOP_STREAM,
                    )
                wire.raw(msg_type, payload)
        if i < len(sizes):
            wire.data(position, sizes[i])
            position += sizes[i]
    wire.add(Ack(MsgType.STOP_STREAM, STOP_SEQ, position % WRAP))

    dec = decoder()
    got, messages, blocks = run(wire.bytes(), dec, cuts)
    c = dec.counters
    assert sorted(got) == list(range(start, position))
    assert c.samples_received == position - start and c.samples_lost == 0
    assert c.frames_implausible == expected_implausible
    assert c.stream_resyncs == 0 and c.frames_corrupt == 0
    assert len(anomalies(messages)) == expected_implausible
    assert_truthful(got, blocks)
