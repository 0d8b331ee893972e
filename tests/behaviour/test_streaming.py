"""Streaming: sample counts exact on the device clock; nothing lost on a clean
link."""

from __future__ import annotations

import time

from firmware_bridge.protocol import StatusFlag
from tests.behaviour._board import Collector, configure, open_board, wait_for


def test_a_second_of_streaming_is_every_sample_once_in_order(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        rate = configure(device)
        t0 = time.monotonic()
        first = device.start_stream()
        assert device.status().flags & StatusFlag.STREAMING
        time.sleep(1.0)
        end = device.stop_stream()
        wall_s = time.monotonic() - t0
        assert not device.status().flags & StatusFlag.STREAMING
        counters = device.counters
        # The reader resolves the ACK before it hands the same read to the
        # listeners: the last block may reach them a moment after stop_stream.
        wait_for(lambda: sum(n for _, n in seen.runs()) >= end - first, 1.0)
        runs = seen.runs()
    # Wall clock, loose: the board's clock runs at the rate it was given.
    assert 0.9 * rate < end - first < 1.1 * wall_s * rate
    # Device clock: exact. Every sample from the START_STREAM ACK up to the
    # STOP_STREAM ACK arrived, once, each run starting where the last ended.
    assert counters.samples_received == end - first
    assert counters.samples_lost == 0 and counters.samples_duplicate == 0
    assert counters.frames_corrupt == counters.frames_lost == 0
    assert seen.gaps().size == 0
    assert runs[0][0] == first
    assert [b for b, _ in runs[1:]] == [a + n for a, n in runs[:-1]]
    assert runs[-1][0] + runs[-1][1] == end
