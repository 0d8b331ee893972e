"""Decoder throughput: bytes from the port -> validated sample arrays, one core.

Figures: ``decode_mb_per_s`` (StreamDecoder fed 64 KiB reads),
``decode_mb_per_s_4k_reads`` (4 KiB reads, the host keeping up with the port),
``decode_python_baseline_mb_per_s`` (a straightforward per-frame pure-Python
decoder on the same stream) and their ratio. A USB full-speed link carries about
1.2 MB/s, so the host must never be the bottleneck.
"""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np

from firmware_bridge.protocol import (
    CameraTriggered,
    Data,
    StreamDecoder,
    encode_message,
)
from firmware_bridge.protocol.framing import cobs_decode


def make_stream(n_frames: int) -> bytes:
    """4 ch × 300-sample DATA frames (10 ms at 30 kS/s), a trigger every 2 frames."""
    rng = np.random.default_rng(0)
    parts, seq, index = [], 0, 0
    for i in range(n_frames):
        block = rng.integers(-3000, 3000, (300, 4), dtype=np.int16)
        parts.append(encode_message(Data(index, block), seq))
        seq = (seq + 1) & 0xFF
        index += 300
        if i % 2:
            parts.append(encode_message(CameraTriggered(index, i), seq))
            seq = (seq + 1) & 0xFF
    return b"".join(parts)


def python_baseline(data: bytes) -> int:
    """Per frame: split, COBS-decode, CRC-check, unpack samples with numpy."""
    received = 0
    for raw in data.split(b"\x00"):
        if not raw:
            continue
        body = cobs_decode(raw)
        head, crc = body[:-4], struct.unpack("<I", body[-4:])[0]
        if zlib.crc32(head) != crc or head[0] != 0x90:
            continue
        _, n_ch, n = struct.unpack_from("<IBH", head, 2)
        samples = np.frombuffer(head, dtype="<i2", offset=9).reshape(n, n_ch)
        received += samples.shape[0]
    return received


def best_rate(fn, data: bytes, repeats: int) -> float:
    """Best MB/s over ``repeats`` runs (the machine may be busy)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn(data)
        best = max(best, len(data) / (time.perf_counter() - start) / 1e6)
    return best


def run(quick: bool = False) -> dict[str, float]:
    """Measure the decoder and the baseline on the same stream."""
    stream = make_stream(800 if quick else 4000)
    repeats = 2 if quick else 5

    def feed(read_size: int):
        def go(data: bytes) -> None:
            decoder = StreamDecoder(4)
            for i in range(0, len(data), read_size):
                decoder.feed(data[i : i + read_size])
            assert decoder.counters.samples_lost == 0

        return go

    feed(65536)(stream[:100_000])  # compile / load the kernels first
    fast = best_rate(feed(65536), stream, repeats)
    small = best_rate(feed(4096), stream, repeats)
    quarter = stream[: stream.rfind(b"\x00", 0, len(stream) // 4) + 1]  # whole frames
    slow = best_rate(python_baseline, quarter, max(1, repeats // 2))
    return {
        "decode_mb_per_s": fast,
        "decode_mb_per_s_4k_reads": small,
        "decode_python_baseline_mb_per_s": slow,
        "decode_speedup_vs_python": fast / slow,
    }
