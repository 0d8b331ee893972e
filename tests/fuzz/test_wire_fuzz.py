"""The wire from a hostile board: a host ``Device`` on a real pseudo-terminal
against a board that answers every command with frames Hypothesis chooses.

Every frame has a good CRC and a valid layout, so nothing is rejected as
damage: replies with any field values (a HELLO_REPLY claiming no ADC range or
no sample rate, a NAK naming any field, an ACK for another command or
sequence number), silence, any other type with any payload, and unsolicited
DATA, events and BOOT frames in between. Whatever the board says, each
``Device`` call returns or raises ``DeviceError`` (one message, no other
exception), within its time budget (no hang), the serial reader survives, and
capabilities the host accepted are ones it can use.

The other sides of the wire are fuzzed elsewhere: the stream decoder against
hostile frames among a clean stream (tests/firmware_bridge/
test_stream_hostile.py), damaged bytes (test_stream_properties.py), and the
simulated firmware against hostile command frames
(tests/sim/test_board_fuzz.py: never crashes, always answers).
"""

from __future__ import annotations

import math
import os
import select
import struct
import threading
import time
import tty

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import StimPulse
from firmware_bridge.device import Device, capability_problem
from firmware_bridge.errors import DeviceError
from firmware_bridge.link import RetryPolicy, SerialLink
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    HelloReply,
    MsgType,
    Nak,
    Status,
    decode_frame,
    encode_frame,
    encode_message,
)
from firmware_bridge.protocol.codes import DEVICE_TO_HOST
from firmware_bridge.transport import open_port

WIRE = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIMEOUT_S = 0.1
RETRY = RetryPolicy(attempts=2, max_sends=4, reply_window_s=0.02, reconcile_s=0.2)
# The longest one call may take: a RECONCILE command's wait and evidence
# probes, with a margin for a loaded machine. More is a hang.
CALL_BUDGET_S = 4 * TIMEOUT_S + RETRY.reconcile_s + 3.0
TOPS = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF, "i": 0x7FFFFFFF}


def any_value(code: str):
    top = TOPS[code]
    edges = sorted({0, 1, 2, top // 2, top - 1, top})
    return st.one_of(st.integers(0, top), st.sampled_from(edges))


def packed(layout: struct.Struct):
    """Any values, each within its wire type, packed by ``layout``."""
    codes = layout.format.lstrip("<")
    return st.tuples(*(any_value(c) for c in codes)).map(lambda v: layout.pack(*v))


def plausible(low: int, high: int):
    return st.one_of(st.integers(low, high), any_value("I").map(lambda v: v % 2**16))


# A HELLO_REPLY: mostly plausible capabilities, sometimes anything.
HELLO_FIELDS = st.fixed_dictionaries(
    {
        "firmware_major": any_value("B"),
        "firmware_minor": any_value("B"),
        "firmware_patch": any_value("B"),
        "max_channels": st.one_of(st.just(32), any_value("B")),
        "adc_bits": st.one_of(st.just(16), any_value("B")),
        "n_stim_electrodes": st.one_of(st.just(8), any_value("B")),
        "adc_range_mvpp": st.one_of(st.just(5000), any_value("H")),
        "max_amplitude_mvpp": st.one_of(st.just(6000), any_value("H")),
        "min_duration_us": st.one_of(st.just(500), any_value("I")),
        "max_duration_us": st.one_of(st.just(10_000), any_value("I")),
        "max_train_rate_mhz": st.one_of(st.just(100_000), any_value("I")),
        "max_charge_per_phase_nc": st.one_of(st.just(10_000), any_value("I")),
        "max_on_time_ms_per_min": st.one_of(st.just(6000), any_value("I")),
        "load_ohm": st.one_of(st.just(1000), any_value("H")),
        "max_gain": st.one_of(st.just(10_000), any_value("H")),
        "sample_rates_hz": st.one_of(
            st.just((20_000,)), st.lists(any_value("I"), max_size=4).map(tuple)
        ),
        "board_id": st.text(max_size=12),
    }
)
ANSWERS = st.one_of(
    st.tuples(st.just("right"), HELLO_FIELDS, any_value("I"), packed(Status.LAYOUT)),
    st.tuples(st.just("right"), HELLO_FIELDS, any_value("I"), packed(Status.LAYOUT)),
    st.tuples(st.just("nak"), packed(struct.Struct("<BBIII")), st.text(max_size=10)),
    st.tuples(st.just("wrong-seq"), st.integers(1, 255)),
    st.tuples(st.just("silent")),
    st.tuples(
        st.just("other"),
        st.sampled_from(sorted(DEVICE_TO_HOST)),
        st.binary(max_size=40),
    ),
)
# Unsolicited frames before an answer: well-formed events and samples with any
# values, a BOOT, or any type with any payload.
EXTRAS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(
                [MsgType.STIM_DELIVERED, MsgType.CAMERA_TRIGGERED, MsgType.LED_FLASHED]
            ),
            st.none(),
        ),
        st.tuples(st.just(MsgType.DATA), packed(struct.Struct("<I"))),
        st.tuples(st.just(MsgType.BOOT), st.just(b"")),
        st.tuples(st.integers(0, 255), st.binary(max_size=24)),
    ),
    max_size=2,
)


class HostileBoard:
    """A pty peer that answers the host's n-th frame with ``script[n]``."""

    def __init__(self, script: list[tuple[tuple, list]]) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._script = script
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        os.close(self._master)
        os.close(self._slave)

    def _frame(self, msg_type: int, payload: bytes) -> bytes:
        frame = encode_frame(msg_type, self._seq, payload)
        self._seq = (self._seq + 1) & 0xFF
        return frame

    def _message(self, message) -> bytes:
        frame = encode_message(message, self._seq)
        self._seq = (self._seq + 1) & 0xFF
        return frame

    def _run(self) -> None:
        pending, n = b"", 0
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                pending += os.read(self._master, 4096)
            except OSError:
                return
            while b"\x00" in pending:
                raw, pending = pending.split(b"\x00", 1)
                msg_type, seq, _ = decode_frame(raw)
                answer, extras = self._script[n % len(self._script)]
                n += 1
                out = b"".join(self._extra(*e) for e in extras)
                out += self._answer(answer, msg_type, seq)
                os.write(self._master, out)

    def _extra(self, msg_type: int, payload: bytes | None) -> bytes:
        if payload is None:  # a well-formed event with any values
            layout = {
                MsgType.STIM_DELIVERED: "<IBHHHIBB",
                MsgType.CAMERA_TRIGGERED: "<II",
                MsgType.LED_FLASHED: "<I",
            }[msg_type]
            payload = bytes(struct.calcsize(layout))
        if msg_type == MsgType.DATA:  # a block of 4 channels, 3 samples
            payload = payload + struct.pack("<BH", 4, 3) + bytes(24)
        return self._frame(msg_type, payload)

    def _answer(self, answer: tuple, msg_type: int, seq: int) -> bytes:
        kind = answer[0]
        if kind == "silent":
            return b""
        if kind == "other":
            return self._frame(answer[1], answer[2])
        if kind == "nak":
            error, field, value, low, high = struct.unpack("<BBIII", answer[1])
            return self._message(
                Nak(msg_type, seq, error, field, value, low, high, answer[2])
            )
        if kind == "wrong-seq":
            return self._message(Ack(msg_type, (seq + answer[1]) & 0xFF, 0))
        _, hello, sample_index, status = answer
        if msg_type == MsgType.HELLO:
            return self._message(
                HelloReply(cmd_seq=seq, protocol_version=PROTOCOL_VERSION, **hello)
            )
        if msg_type == MsgType.GET_STATUS:
            fields = list(Status.LAYOUT.unpack(status))
            fields[0] = seq
            return self._frame(MsgType.STATUS, Status.LAYOUT.pack(*fields))
        return self._message(Ack(msg_type, seq, sample_index))


def calls(device: Device):
    yield lambda: device.configure(sample_rate_hz=20_000, channels=4, gain=1000)
    yield device.start_stream
    yield device.status
    yield lambda: device.stimulate(StimPulse(4.0, 3e-3))
    yield device.stop_stream
    yield device.disarm


def usable(device: Device) -> None:
    """Capabilities the host accepted are in range and give a finite gain."""
    info = device.info
    assert info is not None
    assert info.sample_rates_hz and all(r > 0 for r in info.sample_rates_hz)
    volts = info.volts_per_count(1000)
    assert math.isfinite(volts) and volts > 0
    assert info.min_duration_s <= info.max_duration_s
    assert info.load_ohm > 0 and info.max_gain >= 1


@WIRE
@given(script=st.lists(st.tuples(ANSWERS, EXTRAS), min_size=1, max_size=8))
def test_a_hostile_board_gets_device_errors_never_a_traceback_or_a_hang(script):
    board = HostileBoard(script)
    link = SerialLink(open_port(board.port), retry=RETRY)
    device = Device(link)
    try:
        link.start()
        start = time.monotonic()
        try:
            device.connect(timeout_s=TIMEOUT_S)
        except DeviceError as exc:
            assert str(exc)
            return
        finally:
            assert time.monotonic() - start < CALL_BUDGET_S
        usable(device)
        for call in calls(device):
            start = time.monotonic()
            try:
                call()
            except DeviceError as exc:
                assert str(exc)
            assert time.monotonic() - start < CALL_BUDGET_S, call
        assert link.error is None  # the port is fine: nothing ended the link
        assert link._reader.is_alive()
    finally:
        device.link.close()
        board.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"adc_range_mvpp": 0}, "adc_range_mvpp = 0; allowed 1–100000"),
        ({"adc_bits": 0}, "adc_bits = 0; allowed 8–32"),
        ({"max_gain": 0}, "max_gain = 0; allowed 1–65535"),
        ({"sample_rates_hz": ()}, "sample_rates_hz = []; allowed one or more"),
        ({"min_duration_us": 20_000}, "min_duration_us = 20000 > max_duration_us"),
    ],
)
def test_capabilities_out_of_range_are_named(changes, message):
    reply = HelloReply(
        cmd_seq=0, protocol_version=PROTOCOL_VERSION, firmware_major=0,
        firmware_minor=1, firmware_patch=0, max_channels=32, adc_bits=16,
        n_stim_electrodes=8, adc_range_mvpp=5000, max_amplitude_mvpp=6000,
        min_duration_us=500, max_duration_us=10_000, max_train_rate_mhz=100_000,
        max_charge_per_phase_nc=10_000, max_on_time_ms_per_min=6000, load_ohm=1000,
        max_gain=10_000, sample_rates_hz=(20_000,), board_id="x",
    )  # fmt: skip
    assert capability_problem(reply) is None
    bad = HelloReply(**{**{f: getattr(reply, f) for f in reply.__slots__}, **changes})
    assert message in capability_problem(bad)
