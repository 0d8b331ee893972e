"""Hypothesis: the simulated firmware fed random command frames with good CRCs.

Whatever the type byte and payload (well-formed with any field values, or any
bytes), the board never raises, answers every frame with exactly one ACK, NAK or
reply carrying its seq, never needs its internal-error fallback, and its
host-loss watchdog still disarms it afterwards.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    MESSAGE_CLASSES,
    Ack,
    Arm,
    Fault,
    FaultCode,
    HelloReply,
    MsgType,
    Nak,
    ResetFault,
    Status,
    decode_frame,
    encode_frame,
    encode_message,
    parse_payload,
)
from firmware_bridge.protocol.codes import HOST_TO_DEVICE
from firmware_bridge.sim.board import SimBoard
from firmware_bridge.sim.worm import WormModel

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOPS = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF}
COMMANDS = sorted(HOST_TO_DEVICE)


def field_value(top: int):
    edges = sorted({0, 1, 2, top // 2, top // 2 + 1, top - 1, top})
    return st.one_of(st.integers(0, top), st.sampled_from(edges))


@st.composite
def well_formed(draw):
    """A command with its exact layout and any values in each field's wire type."""
    msg_type = draw(st.sampled_from(COMMANDS))
    layout = MESSAGE_CLASSES[MsgType(msg_type)].LAYOUT
    codes = layout.format.lstrip("<")
    values = [draw(field_value(TOPS[c])) for c in codes]
    return msg_type, layout.pack(*values)


@st.composite
def deliverable_stimulate(draw):
    """A STIMULATE within the board's limits, so pulses and trains really run."""
    payload = struct.pack(
        "<HIBBHI",
        draw(st.integers(1, 6000)),
        draw(st.integers(500, 10_000)),
        0,
        draw(st.integers(0, 1)),
        draw(st.integers(1, 4)),
        draw(st.integers(10_001, 60_000)),
    )
    return int(MsgType.STIMULATE), payload


any_frame = st.one_of(
    well_formed(),
    deliverable_stimulate(),
    st.tuples(st.sampled_from([MsgType.ARM, MsgType.START_STREAM]), st.just(b"")),
    st.tuples(st.integers(0, 255), st.binary(max_size=40)),
)
op = st.one_of(
    st.tuples(st.just("frame"), any_frame, st.integers(0, 255)),
    st.tuples(st.just("advance"), st.integers(1, 3000)),
)


def decoded(out) -> list:
    messages = []
    for *_, raw in out:
        msg_type, _, payload = decode_frame(raw[:-1])
        messages.append(parse_payload(msg_type, payload))
    return messages


@FUZZ
@given(ops=st.lists(op, min_size=1, max_size=30))
def test_fuzz_random_command_frames_always_answered_never_fatal(ops):
    board = SimBoard(WormModel(seed=3))
    for item in ops:
        if item[0] == "advance":
            decoded(board.advance(item[1]))
            continue
        _, (msg_type, payload), seq = item
        messages = decoded(board.receive(encode_frame(msg_type, seq, payload)))
        answers = [
            m for m in messages if isinstance(m, Ack | Nak | HelloReply | Status)
        ]
        assert len(answers) == 1, (msg_type, payload, messages)
        [answer] = answers
        assert answer.cmd_seq == seq
        if isinstance(answer, Ack | Nak):
            assert answer.cmd_type == msg_type
        if msg_type not in HOST_TO_DEVICE:
            assert isinstance(answer, Nak)
        assert board.firmware_errors == 0, messages

    # The watchdog still runs: armed and left without host frames, the board
    # disarms and latches HOST_LOSS within 300 ms of board time.
    assert isinstance(decoded(board.receive(encode_message(ResetFault(), 1)))[0], Ack)
    assert isinstance(decoded(board.receive(encode_message(Arm(), 2)))[-1], Ack)
    assert board.armed
    out = decoded(board.advance(int(0.35 * board.sample_rate_hz)))
    faults = [m.code for m in out if isinstance(m, Fault)]
    assert faults == [FaultCode.HOST_LOSS] and not board.armed
    assert board.firmware_errors == 0
