"""Regenerate golden_frames.json from the layouts in docs/protocol.md.

Deliberately independent of firmware_bridge.protocol: the layouts below are
transcribed from the specification's tables, COBS is the textbook algorithm and
the CRC is zlib's. Run ``python firmware_bridge/testdata/make_golden.py``; the
JSON is the test vector set a firmware's own tests can load.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

# (name, direction, type, seq, struct layout, field names, values, tail)
# tail: extra bytes appended to the payload (text, samples, rate list).
VECTORS = [
    ("HELLO", "host->board", 0x01, 0, "<H", ["protocol_version"], [3], b""),
    ("GET_STATUS", "host->board", 0x02, 1, "<", [], [], b""),
    ("CONFIGURE", "host->board", 0x03, 2, "<IIH",
     ["sample_rate_hz", "channel_mask", "gain"], [30000, 0x0F, 1000], b""),
    ("START_STREAM", "host->board", 0x04, 3, "<", [], [], b""),
    ("STOP_STREAM", "host->board", 0x05, 4, "<", [], [], b""),
    ("HEARTBEAT", "host->board", 0x06, 255, "<", [], [], b""),
    ("ARM", "host->board", 0x07, 6, "<", [], [], b""),
    ("DISARM", "host->board", 0x08, 7, "<", [], [], b""),
    ("RESET_FAULT", "host->board", 0x09, 8, "<", [], [], b""),
    ("STIMULATE", "host->board", 0x0A, 9, "<HIBBBHI",
     ["amplitude_mvpp", "duration_us", "cathode", "anode", "polarity", "n_pulses",
      "train_period_us"],
     [4000, 3000, 0, 1, 1, 1, 0], b""),
    ("STIMULATE_TRAIN", "host->board", 0x0A, 10, "<HIBBBHI",
     ["amplitude_mvpp", "duration_us", "cathode", "anode", "polarity", "n_pulses",
      "train_period_us"],
     [6000, 6700, 3, 4, 0, 3, 100000], b""),
    ("STIMULATE_COMMON_RETURN", "host->board", 0x0A, 14, "<HIBBBHI",
     ["amplitude_mvpp", "duration_us", "cathode", "anode", "polarity", "n_pulses",
      "train_period_us"],
     [3500, 2000, 7, 255, 1, 1, 0], b""),
    ("TEST_SIGNAL", "host->board", 0x0B, 11, "<BIIH",
     ["enable", "channel_mask", "amplitude_uvpp", "frequency_hz"], [1, 0x0F, 100, 1000], b""),
    ("LED_PULSE", "host->board", 0x0C, 12, "<I", ["duration_us"], [5000], b""),
    ("CAMERA_TRIGGER", "host->board", 0x0D, 13, "<I", ["period_us"], [16667], b""),
    ("ACK", "board->host", 0x80, 0, "<BBI", ["cmd_type", "cmd_seq", "sample_index"],
     [0x0A, 9, 123456], b""),
    ("ACK_WRAPPED", "board->host", 0x80, 1, "<BBI", ["cmd_type", "cmd_seq", "sample_index"],
     [0x05, 4, 0xFFFFFFFF], b""),
    ("NAK", "board->host", 0x81, 2, "<BBBBIII",
     ["cmd_type", "cmd_seq", "error", "field", "value", "allowed_min", "allowed_max"],
     [0x0A, 9, 3, 1, 9000, 1, 6000], b"amplitude too high"),
    ("NAK_U32", "board->host", 0x81, 12, "<BBBBIII",
     ["cmd_type", "cmd_seq", "error", "field", "value", "allowed_min", "allowed_max"],
     [0x0A, 10, 3, 2, 0xFFFFFFFF, 500, 10000], b""),
    ("NAK_CONFIGURATION", "board->host", 0x81, 13, "<BBBBIII",
     ["cmd_type", "cmd_seq", "error", "field", "value", "allowed_min", "allowed_max"],
     [0x0A, 14, 12, 18, 4, 0, 7], b"anode is the cathode"),
    ("HELLO_REPLY", "board->host", 0x82, 3, "<BHBBBBBBHHIIIIIHH",
     ["cmd_seq", "protocol_version", "firmware_major", "firmware_minor", "firmware_patch",
      "max_channels", "adc_bits", "n_stim_electrodes", "adc_range_mvpp", "max_amplitude_mvpp",
      "min_duration_us", "max_duration_us", "max_train_rate_mhz",
      "max_charge_per_phase_nc", "max_on_time_ms_per_min", "load_ohm", "max_gain"],
     [0, 3, 0, 1, 0, 32, 16, 8, 5000, 6000, 500, 10000, 100000, 10000, 6000, 1000, 10000],
     struct.pack("<B4I", 4, 10000, 20000, 30000, 40000) + b"neurorig-sim"),
    ("STATUS", "board->host", 0x83, 4, "<BBBIIIHI",
     ["cmd_seq", "flags", "fault", "sample_index", "sample_rate_hz", "channel_mask",
      "gain", "on_time_ms_last_min"], [1, 0x0B, 1, 900000, 30000, 0x0F, 1000, 42], b""),
    ("DATA", "board->host", 0x90, 5, "<IBH", ["first_sample_index", "n_channels", "n_samples"],
     [1000, 4, 3], struct.pack("<12h", 0, 1, -1, 32767, -32768, 256, -256, 0, 0, 0, 7, -7)),
    ("DATA_LONG", "board->host", 0x90, 6, "<IBH",
     ["first_sample_index", "n_channels", "n_samples"], [2**32 - 50, 2, 100],
     struct.pack("<200h", *[(k * 37) % 700 - 350 for k in range(200)])),
    ("STIM_DELIVERED", "board->host", 0x91, 7, "<IBHHHIBBB",
     ["sample_index", "cmd_seq", "pulse_index", "commanded_mvpp", "delivered_mvpp",
      "duration_us", "cathode", "anode", "polarity"],
     [123456, 9, 0, 4000, 3987, 3000, 0, 1, 1], b""),
    ("STIM_DELIVERED_COMMON_RETURN", "board->host", 0x91, 14, "<IBHHHIBBB",
     ["sample_index", "cmd_seq", "pulse_index", "commanded_mvpp", "delivered_mvpp",
      "duration_us", "cathode", "anode", "polarity"],
     [200000, 14, 0, 3500, 3493, 2000, 7, 255, 1], b""),
    ("CAMERA_TRIGGERED", "board->host", 0x92, 8, "<II", ["sample_index", "trigger_count"],
     [500, 0], b""),
    ("FAULT", "board->host", 0x93, 9, "<IB", ["sample_index", "code"], [9000, 1],
     b"no host frame for 300 ms"),
    ("LED_FLASHED", "board->host", 0x94, 10, "<II", ["sample_index", "duration_us"],
     [30001, 5000], b""),
    ("BOOT", "board->host", 0x95, 0, "<HBBBB",
     ["protocol_version", "firmware_major", "firmware_minor", "firmware_patch",
      "reset_cause"], [3, 0, 1, 0, 5], b""),
    ("LOG", "board->host", 0x96, 11, "<IB", ["sample_index", "level"], [77, 20],
     "µ-controller ready".encode()),
]  # fmt: skip


def cobs(data: bytes) -> bytes:
    """Textbook COBS encoder (Cheshire & Baker)."""
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
            continue
        block.append(byte)
        if len(block) == 254:
            out += b"\xff" + block
            block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def build() -> dict:
    """Every vector with its payload and complete frame bytes."""
    frames = []
    for name, direction, msg_type, seq, layout, names, values, tail in VECTORS:
        payload = struct.pack(layout, *values) + tail
        head = bytes([msg_type, seq]) + payload
        body = head + struct.pack("<I", zlib.crc32(head))
        frames.append({
            "name": name, "direction": direction, "type": msg_type, "seq": seq,
            "fields": dict(zip(names, values, strict=True)),
            "tail_hex": tail.hex(), "payload_hex": payload.hex(),
            "frame_hex": (cobs(body) + b"\x00").hex(),
        })  # fmt: skip
    return {
        "protocol_version": 3,
        "framing": "COBS(type u8 | seq u8 | payload | crc32 u32 LE) + 0x00",
        "crc": "CRC-32/ISO-HDLC (zlib.crc32) over type|seq|payload",
        "crc_check": {"input_ascii": "123456789", "crc32": 0xCBF43926},
        "frames": frames,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("golden_frames.json")
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {out}")
