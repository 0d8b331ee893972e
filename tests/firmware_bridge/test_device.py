"""Device over a real pseudo-terminal against a scripted board (exact bytes)."""

from __future__ import annotations

import struct
import threading
import time
import zlib

import numpy as np
import pytest

from firmware_bridge import StimPulse
from firmware_bridge.device import Device
from firmware_bridge.errors import (
    CommandRefused,
    DeviceDisconnected,
    DeviceTimeout,
    ProtocolVersionMismatch,
)
from firmware_bridge.link import SerialLink
from firmware_bridge.protocol import (
    Ack,
    Data,
    HelloReply,
    MsgType,
    Nak,
    StimDelivered,
    encode_message,
)
from firmware_bridge.testing import scripted_board
from firmware_bridge.transport import open_port


def naive_frame(body_wo_crc: bytes) -> bytes:
    """Frame bytes built independently of the codec: CRC, then textbook COBS."""
    body = body_wo_crc + struct.pack("<I", zlib.crc32(body_wo_crc))
    out, block = b"", b""
    for byte in body:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block = b""
        else:
            block += bytes([byte])
            if len(block) == 254:
                out += b"\xff" + block
                block = b""
    return out + bytes([len(block) + 1]) + block + b"\x00"


HELLO_SEQ0 = naive_frame(bytes([0x01, 0x00]) + struct.pack("<H", 3))
BOARD = HelloReply(
    cmd_seq=0,
    protocol_version=3,
    firmware_major=0,
    firmware_minor=1,
    firmware_patch=0,
    max_channels=32,
    adc_bits=16,
    n_stim_electrodes=8,
    adc_range_mvpp=5000,
    max_amplitude_mvpp=6000,
    min_duration_us=500,
    max_duration_us=10000,
    max_train_rate_mhz=100000,
    max_charge_per_phase_nc=5000,
    max_on_time_ms_per_min=6000,
    load_ohm=1000,
    max_gain=10000,
    sample_rates_hz=(10000, 30000),
    board_id="scripted",
)


def open_device(port: str) -> Device:
    link = SerialLink(open_port(port))
    device = Device(link)
    link.start()
    device.connect(timeout_s=2.0)
    return device


def test_handshake_sends_exact_bytes_and_reads_capabilities_in_si():
    with scripted_board([(HELLO_SEQ0, encode_message(BOARD, 0))]) as board:
        device = open_device(board.port)
        try:
            assert board.mismatches == []
            info = device.info
            assert info.firmware_version == "0.1.0"
            assert info.max_amplitude_vpp == pytest.approx(6.0)
            assert info.min_duration_s == pytest.approx(500e-6)
            assert info.max_charge_per_phase_c == pytest.approx(5e-6)
            assert info.sample_rates_hz == (10000, 30000)
            assert info.volts_per_count(1000) == pytest.approx(5.0 / 65536 / 1000)
        finally:
            device.link.close()


def test_version_mismatch_names_both_versions():
    nak = Nak(MsgType.HELLO, 0, 7, 12, 3, 4, 4, "board speaks 4")
    with scripted_board([(HELLO_SEQ0, encode_message(nak, 0))]) as board:
        with pytest.raises(ProtocolVersionMismatch) as info:
            open_device(board.port)
    assert "host speaks version 3" in str(info.value)
    assert "board speaks version 4" in str(info.value)


def test_stimulate_sends_wire_units_and_returns_onset_sample():
    stim = naive_frame(
        bytes([0x0A, 0x01]) + struct.pack("<HIBBBHI", 4000, 3000, 0, 1, 1, 1, 0)
    )
    ack = encode_message(Ack(MsgType.STIMULATE, 1, 123_456), 1)
    with scripted_board([(HELLO_SEQ0, encode_message(BOARD, 0)), (stim, ack)]) as b:
        device = open_device(b.port)
        try:
            onset = device.stimulate(
                StimPulse(amplitude_vpp=4.0, duration_s=3e-3, polarity=1)
            )
            assert b.mismatches == []
            assert onset == 123_456
        finally:
            device.link.close()


def test_nak_becomes_error_naming_field_value_and_range_in_si():
    stim = naive_frame(
        bytes([0x0A, 0x01]) + struct.pack("<HIBBBHI", 9000, 3000, 0, 1, 0, 1, 0)
    )
    nak = encode_message(Nak(MsgType.STIMULATE, 1, 3, 1, 9000, 1, 6000), 1)
    with scripted_board([(HELLO_SEQ0, encode_message(BOARD, 0)), (stim, nak)]) as b:
        device = open_device(b.port)
        try:
            with pytest.raises(CommandRefused) as info:
                device.stimulate(StimPulse(amplitude_vpp=9.0, duration_s=3e-3))
        finally:
            device.link.close()
    message = str(info.value)
    assert "STIMULATE" in message and "OUT_OF_RANGE" in message
    assert "amplitude 9 Vpp is outside the allowed 0.001–6 Vpp" in message


def test_no_reply_times_out_with_the_port_named():
    with scripted_board([]) as board:
        link = SerialLink(open_port(board.port))
        link.start()
        device = Device(link)
        try:
            with pytest.raises(DeviceTimeout, match=board.port):
                device.connect(timeout_s=0.2)
        finally:
            link.close()


def test_unplug_is_reported_within_500_ms_and_samples_before_are_kept():
    block = np.arange(40, dtype=np.int16).reshape(10, 4)
    start = encode_message(Ack(MsgType.START_STREAM, 0, 0), 0)
    data = encode_message(Data(0, block), 1)
    with scripted_board([]) as board:
        link = SerialLink(open_port(board.port), n_channels=4)
        received = []
        failed = threading.Event()
        link.add_listener(lambda d: received.append(d.samples.copy()))
        link.add_error_listener(lambda err: failed.set())
        link.start()
        board.write(start + data)  # after open: pyserial flushes input on open
        deadline = time.monotonic() + 5
        while sum(len(r) for r in received) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        t_unplug = time.monotonic()
        board.unplug()
        assert failed.wait(2.0)
        detect_s = time.monotonic() - t_unplug
        try:
            assert isinstance(link.error, DeviceDisconnected)
            assert detect_s < 0.5
            np.testing.assert_array_equal(np.concatenate(received), block)
            with pytest.raises(DeviceDisconnected):
                link.send(Ack(0, 0, 0))
        finally:
            link.close()


def test_events_reach_listeners_with_unwrapped_sample_numbers():
    start = encode_message(Ack(MsgType.START_STREAM, 0, 2**32 - 5), 0)
    data = encode_message(Data(2**32 - 5, np.zeros((10, 1), np.int16)), 1)
    event = encode_message(StimDelivered(3, 2, 0, 4000, 3990, 3000, 0, 1, 0), 2)
    with scripted_board([]) as board:
        link = SerialLink(open_port(board.port), n_channels=1)
        messages = []
        link.add_listener(lambda d: messages.extend(d.messages))
        link.start()
        board.write(start + data + event)
        deadline = time.monotonic() + 5
        while len(messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        link.close()
    stim = [m for m in messages if isinstance(m, StimDelivered)]
    assert stim[0].sample_index == 2**32 + 3  # after the u32 wrap, not 3


def test_network_urls_are_refused_unless_allowed():
    with pytest.raises(ValueError, match="socket://"):
        open_port("socket://localhost:7777")
    with pytest.raises(FileNotFoundError, match="/dev/ttyNOPE"):
        open_port("/dev/ttyNOPE")
