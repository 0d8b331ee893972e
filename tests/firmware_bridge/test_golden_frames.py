"""The codec against the golden frames written from docs/protocol.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import Polarity, StimPulse
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    MsgType,
    Stimulate,
    decode_frame,
    encode_message,
    parse_payload,
)
from firmware_bridge.protocol import _kernels as k

GOLDEN = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "firmware_bridge/testdata/golden_frames.json"
    ).read_text()
)
FRAMES = {f["name"]: f for f in GOLDEN["frames"]}


def test_every_message_type_has_a_golden_frame():
    assert {f["type"] for f in GOLDEN["frames"]} == {int(t) for t in MsgType}


def test_golden_frames_are_for_the_codec_protocol_version():
    assert GOLDEN["protocol_version"] == PROTOCOL_VERSION == 3
    assert FRAMES["HELLO"]["fields"]["protocol_version"] == PROTOCOL_VERSION


def test_nak_carries_u32_values_above_2_to_the_31():
    # Version 1 carried them as i32: a refused u32 field >= 2**31 could not be
    # encoded, and the board's NAK raised instead of being sent.
    nak = parse_payload(0x81, bytes.fromhex(FRAMES["NAK_U32"]["payload_hex"]))
    assert nak.value == 2**32 - 1 and nak.allowed_max == 10_000


@pytest.mark.parametrize("name", list(FRAMES))
def test_codec_decodes_golden_bytes_to_the_fields_and_encodes_them_back(name):
    vector = FRAMES[name]
    raw = bytes.fromhex(vector["frame_hex"])
    assert raw.endswith(b"\x00") and b"\x00" not in raw[:-1]
    msg_type, seq, payload = decode_frame(raw[:-1])
    assert (msg_type, seq) == (vector["type"], vector["seq"])
    assert payload.hex() == vector["payload_hex"]
    message = parse_payload(msg_type, payload)
    for field, value in vector["fields"].items():
        if field in ("n_channels", "n_samples"):
            continue  # carried by the samples array's shape
        assert getattr(message, field) == value, field
    assert encode_message(message, seq).hex() == vector["frame_hex"]


def test_tails_decode_to_text_samples_and_rates():
    data = parse_payload(0x90, bytes.fromhex(FRAMES["DATA"]["payload_hex"]))
    np.testing.assert_array_equal(
        data.samples, [[0, 1, -1, 32767], [-32768, 256, -256, 0], [0, 0, 7, -7]]
    )
    reply = parse_payload(0x82, bytes.fromhex(FRAMES["HELLO_REPLY"]["payload_hex"]))
    assert reply.sample_rates_hz == (10000, 20000, 30000, 40000)
    assert reply.board_id == "neurorig-sim"
    nak = parse_payload(0x81, bytes.fromhex(FRAMES["NAK"]["payload_hex"]))
    assert nak.message == "amplitude too high"
    log = parse_payload(0x96, bytes.fromhex(FRAMES["LOG"]["payload_hex"]))
    assert log.message == "µ-controller ready"


def test_stim_pulse_in_si_encodes_to_the_golden_stimulate_frames():
    single = StimPulse(
        amplitude_vpp=4.0, duration_s=3e-3, polarity=Polarity.NEGATIVE_FIRST
    )
    train = StimPulse(
        amplitude_vpp=6.0, duration_s=6.7e-3, cathode=3, anode=4, n_pulses=3,
        rate_hz=10.0,
    )  # fmt: skip
    common = StimPulse(
        amplitude_vpp=3.5, duration_s=2e-3, cathode=7, anode=None,
        polarity=Polarity.NEGATIVE_FIRST,
    )  # fmt: skip
    for pulse, seq, name in (
        (single, 9, "STIMULATE"),  # the classic pair: C0-A1
        (train, 10, "STIMULATE_TRAIN"),
        (common, 14, "STIMULATE_COMMON_RETURN"),  # anode 255
    ):
        frame = encode_message(Stimulate.from_pulse(pulse), seq).hex()
        assert frame == FRAMES[name]["frame_hex"], name


def test_numba_crc_matches_the_check_value():
    data = np.frombuffer(b"123456789", dtype=np.uint8)
    assert k.crc32(data, 0, 9, k.CRC_TABLES) == GOLDEN["crc_check"]["crc32"]
