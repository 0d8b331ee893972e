"""The simulated firmware's command contract, frame by frame (no pty, no clock).

Every out-of-range field of every command is refused with a NAK naming the field
and its range; values of 2**31 and more, which protocol version 1 could not put in
a NAK, are reported exactly; an unexpected error inside the firmware becomes a NAK
and a latched fault, never an exception out of ``receive``/``advance``.
"""

from __future__ import annotations

import pytest

from firmware_bridge.protocol import (
    Ack,
    Arm,
    CameraTrigger,
    Configure,
    Fault,
    FaultCode,
    Field,
    LedPulse,
    Nak,
    NakCode,
    ResetFault,
    Stimulate,
    TestSignal,
    decode_frame,
    encode_message,
    parse_payload,
)
from firmware_bridge.sim.board import SimBoard
from firmware_bridge.sim.worm import WormModel

U32 = 2**32 - 1


def board() -> SimBoard:
    b = SimBoard(WormModel(seed=1))
    b.receive(encode_message(Arm(), 0))
    assert b.armed
    return b


def replies(b: SimBoard, message, seq: int = 1) -> list:
    out = []
    for _, _, _, raw in b.receive(encode_message(message, seq)):
        msg_type, _, payload = decode_frame(raw[:-1])
        out.append(parse_payload(msg_type, payload))
    return out


GOOD_STIM = dict(
    amplitude_mvpp=3000,
    duration_us=3000,
    cathode=0,
    anode=1,
    polarity=0,
    n_pulses=1,
    train_period_us=0,
)

# (command, field the NAK must name, refused value, allowed min, allowed max)
OUT_OF_RANGE = [
    (Configure(12_345, 0xF, 1000), Field.SAMPLE_RATE_HZ, 12_345, 10_000, 40_000),
    (Configure(30_000, 0, 1000), Field.CHANNEL_MASK, 0, 1, 0xF),
    (Configure(30_000, 1 << 31, 1000), Field.CHANNEL_MASK, 1 << 31, 1, 0xF),
    (Configure(30_000, U32, 1000), Field.CHANNEL_MASK, U32, 1, 0xF),
    (Configure(30_000, 0xF, 0), Field.GAIN, 0, 1, 10_000),
    (Configure(30_000, 0xF, 0xFFFF), Field.GAIN, 0xFFFF, 1, 10_000),
    (
        Stimulate(**{**GOOD_STIM, "amplitude_mvpp": 0}),
        Field.AMPLITUDE_MVPP,
        0,
        1,
        6000,
    ),
    (
        Stimulate(**{**GOOD_STIM, "amplitude_mvpp": 0xFFFF}),
        Field.AMPLITUDE_MVPP,
        0xFFFF,
        1,
        6000,
    ),
    (
        Stimulate(**{**GOOD_STIM, "duration_us": 2**31}),
        Field.DURATION_US,
        2**31,
        500,
        10_000,
    ),
    (
        Stimulate(**{**GOOD_STIM, "duration_us": U32}),
        Field.DURATION_US,
        U32,
        500,
        10_000,
    ),
    (Stimulate(**{**GOOD_STIM, "cathode": 8}), Field.CATHODE, 8, 0, 7),
    (Stimulate(**{**GOOD_STIM, "cathode": 255}), Field.CATHODE, 255, 0, 7),
    (Stimulate(**{**GOOD_STIM, "anode": 8}), Field.ANODE, 8, 0, 7),
    (Stimulate(**{**GOOD_STIM, "anode": 254}), Field.ANODE, 254, 0, 7),
    (Stimulate(**{**GOOD_STIM, "polarity": 2}), Field.POLARITY, 2, 0, 1),
    (Stimulate(**{**GOOD_STIM, "n_pulses": 0}), Field.N_PULSES, 0, 1, 1000),
    (Stimulate(**{**GOOD_STIM, "n_pulses": 0xFFFF}), Field.N_PULSES, 0xFFFF, 1, 1000),
    (
        Stimulate(**{**GOOD_STIM, "n_pulses": 2, "train_period_us": 2**31}),
        Field.TRAIN_PERIOD_US,
        2**31,
        10_000,
        10_000_000,
    ),
    (
        Stimulate(**{**GOOD_STIM, "n_pulses": 2, "train_period_us": 0}),
        Field.TRAIN_PERIOD_US,
        0,
        10_000,
        10_000_000,
    ),
    (TestSignal(2, 1, 100, 1000), Field.TEST_ENABLE, 2, 0, 1),
    (TestSignal(1, 1 << 31, 100, 1000), Field.CHANNEL_MASK, 1 << 31, 0, 0xF),
    (
        TestSignal(1, 1, U32, 1000),
        Field.TEST_AMPLITUDE_UVPP,
        U32,
        0,
        5_000_000,
    ),
    (TestSignal(1, 1, 100, 0), Field.TEST_FREQUENCY_HZ, 0, 1, 5000),
    (TestSignal(1, 1, 100, 0xFFFF), Field.TEST_FREQUENCY_HZ, 0xFFFF, 1, 5000),
    (LedPulse(0), Field.LED_DURATION_US, 0, 1, 1_000_000),
    (LedPulse(U32), Field.LED_DURATION_US, U32, 1, 1_000_000),
    (CameraTrigger(999), Field.CAMERA_PERIOD_US, 999, 1000, 10_000_000),
    (CameraTrigger(2**31), Field.CAMERA_PERIOD_US, 2**31, 1000, 10_000_000),
    (CameraTrigger(U32), Field.CAMERA_PERIOD_US, U32, 1000, 10_000_000),
]


@pytest.mark.parametrize(
    ("command", "field", "value", "lo", "hi"),
    OUT_OF_RANGE,
    ids=[f"{type(c[0]).__name__}-{c[1].name}-{c[2]}" for c in OUT_OF_RANGE],
)
def test_every_out_of_range_field_is_refused_naming_the_field(
    command, field, value, lo, hi
):
    b = board()
    [nak] = replies(b, command, seq=7)
    assert isinstance(nak, Nak)
    assert (nak.cmd_type, nak.cmd_seq) == (command.TYPE, 7)
    assert nak.error == NakCode.OUT_OF_RANGE
    assert (nak.field, nak.value, nak.allowed_min, nak.allowed_max) == (
        field,
        value,
        lo,
        hi,
    )
    assert b.armed and b.fault == FaultCode.NONE and b.firmware_errors == 0
    assert b.pulses == type(b.pulses)() and b.current_pulse is None


def test_disabling_the_test_signal_ignores_its_other_fields():
    b = board()
    [ack] = replies(b, TestSignal(0, U32, U32, 0))
    assert isinstance(ack, Ack) and b.test_signal is None


def test_camera_trigger_zero_switches_it_off():
    b = board()
    assert isinstance(replies(b, CameraTrigger(16_667))[0], Ack)
    assert b.camera_period == 500
    assert isinstance(replies(b, CameraTrigger(0))[0], Ack)
    assert b.camera_period == 0


def test_a_type_the_board_does_not_take_is_refused_without_parsing():
    b = board()
    [nak] = replies(b, Ack(0x0A, 3, 2**32 - 1))  # a board->host type sent to it
    assert nak.error == NakCode.UNKNOWN_COMMAND and nak.cmd_type == 0x80


def test_an_internal_error_becomes_a_nak_and_a_latched_fault(monkeypatch):
    b = board()

    def broken(seq, msg):
        raise ZeroDivisionError("firmware bug")

    monkeypatch.setattr(b, "_stimulate", broken)
    nak, fault = replies(b, Stimulate(**GOOD_STIM), seq=9)
    assert nak.error == NakCode.INTERNAL_ERROR and nak.cmd_seq == 9
    assert "ZeroDivisionError" in nak.message
    assert isinstance(fault, Fault) and fault.code == FaultCode.FIRMWARE_ERROR
    assert not b.armed and b.fault == FaultCode.FIRMWARE_ERROR
    assert b.firmware_errors == 1
    [refused] = replies(b, Arm())
    assert refused.error == NakCode.FAULT_LATCHED
    assert isinstance(replies(b, ResetFault())[0], Ack)
    assert isinstance(replies(b, Arm())[0], Ack)


def test_an_error_while_the_clock_runs_faults_and_the_clock_keeps_running(
    monkeypatch,
):
    b = board()
    replies(b, Configure(30_000, 0xF, 1000))
    b.receive(encode_message(Arm(), 2))
    b.streaming = True

    def broken(start, n):
        raise ValueError("render failed")

    monkeypatch.setattr(b.model, "render", broken)
    out = b.advance(600)
    kinds = [parse_payload(*decode_frame(raw[:-1])[::2]) for *_, raw in out]
    assert any(
        isinstance(m, Fault) and m.code == FaultCode.FIRMWARE_ERROR for m in kinds
    )
    assert b.sample == 600 and not b.streaming and not b.armed
    monkeypatch.undo()
    assert b.advance(300) == [] and b.sample == 900
