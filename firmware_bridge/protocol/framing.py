r"""Frame layer: COBS byte stuffing, 0x00 delimiter, CRC-32 per frame. Pure, no I/O.

A frame on the wire is ``COBS(body) + b"\x00"`` where

    body = type (u8) | seq (u8) | payload (0..MAX_PAYLOAD_BYTES) | crc32 (u32, LE)

and ``crc32`` is the IEEE 802.3 CRC-32 (``zlib.crc32``: reflected, polynomial
0xEDB88320, init and final XOR 0xFFFFFFFF) over ``type | seq | payload``.
COBS guarantees the encoded body holds no 0x00 byte, so a receiver that loses
sync discards bytes up to the next 0x00 and is back in step with the next frame.
See docs/protocol.md for the full specification.

>>> wire = encode_frame(0x10, seq=7, payload=b"\x01\x00\x02")
>>> wire  # no 0x00 but the delimiter
b'\x04\x10\x07\x01\x06\x02=S\xd9\xd4\x00'
>>> decode_frame(wire[:-1])  # (type, seq, payload)
(16, 7, b'\x01\x00\x02')
>>> hex(zlib.crc32(b"123456789"))  # the CRC's check value
'0xcbf43926'
"""

from __future__ import annotations

import struct
import zlib

MAX_PAYLOAD_BYTES = 4096
HEADER_BYTES = 2  # type, seq
CRC_BYTES = 4
MIN_BODY_BYTES = HEADER_BYTES + CRC_BYTES
MAX_BODY_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES + CRC_BYTES
# COBS adds one code byte per 254 data bytes (plus one); the delimiter is extra.
MAX_ENCODED_BYTES = MAX_BODY_BYTES + MAX_BODY_BYTES // 254 + 1
DELIMITER = b"\x00"

_CRC = struct.Struct("<I")


class FrameError(ValueError):
    """A frame that cannot be decoded: bad COBS, bad length or bad CRC."""


def cobs_encode(data: bytes) -> bytes:
    """Encode ``data`` with Consistent Overhead Byte Stuffing (output has no 0x00)."""
    out = bytearray()
    code_index = 0
    out.append(0)  # placeholder for the first code byte
    code = 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes:
    """Decode one COBS block (without its delimiter); raise FrameError if malformed."""
    out = bytearray()
    i = 0
    n = len(encoded)
    while i < n:
        code = encoded[i]
        if code == 0:
            raise FrameError(f"COBS: zero byte inside a frame at offset {i}")
        i += 1
        end = i + code - 1
        if end > n:
            raise FrameError(
                f"COBS: block at offset {i - 1} wants {code - 1} bytes, {n - i} remain"
            )
        out += encoded[i:end]
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Return the complete wire bytes of one frame, delimiter included."""
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"msg_type {msg_type} outside 0..255")
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq {seq} outside 0..255")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD_BYTES "
            f"({MAX_PAYLOAD_BYTES})"
        )
    head = bytes((msg_type, seq)) + payload
    body = head + _CRC.pack(zlib.crc32(head))
    return cobs_encode(body) + DELIMITER


def decode_frame(encoded: bytes) -> tuple[int, int, bytes]:
    """Decode one frame (without its delimiter) into ``(msg_type, seq, payload)``."""
    if len(encoded) > MAX_ENCODED_BYTES:
        raise FrameError(
            f"frame of {len(encoded)} encoded bytes exceeds {MAX_ENCODED_BYTES}"
        )
    body = cobs_decode(encoded)
    if len(body) < MIN_BODY_BYTES:
        raise FrameError(
            f"frame body of {len(body)} bytes is shorter than {MIN_BODY_BYTES}"
        )
    head, (crc,) = body[:-CRC_BYTES], _CRC.unpack(body[-CRC_BYTES:])
    if zlib.crc32(head) != crc:
        raise FrameError(
            f"CRC mismatch: frame says {crc:#010x}, computed {zlib.crc32(head):#010x}"
        )
    return head[0], head[1], bytes(head[2:])
