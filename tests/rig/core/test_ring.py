import threading

import numpy as np
import pytest

from rig.core.ring import SampleRing


def blocks(rng, n_blocks, n_ch):
    return [rng.integers(-500, 500, (rng.integers(1, 40), n_ch), dtype=np.int16)
            for _ in range(n_blocks)]  # fmt: skip


def test_read_back_across_wraparound_matches_what_was_written():
    rng = np.random.default_rng(1)
    ring = SampleRing(capacity=64, n_channels=3)
    written = np.concatenate(blocks(rng, 30, 3))
    first = 1_000_000
    pos = first
    for block in np.array_split(written, 17):
        ring.write(pos, block)
        pos += len(block)
    assert ring.end == first + len(written)
    np.testing.assert_array_equal(ring.read(ring.end - 64, 64), written[-64:])
    start, latest = ring.latest(10)
    assert start == ring.end - 10
    np.testing.assert_array_equal(latest, written[-10:])


def test_gap_is_zero_filled_and_recorded():
    ring = SampleRing(capacity=100, n_channels=1)
    ring.write(0, np.ones((5, 1), np.int16))
    ring.write(8, np.full((2, 1), 7, np.int16))
    np.testing.assert_array_equal(ring.read(0, 10)[:, 0], [1] * 5 + [0] * 3 + [7, 7])
    assert list(ring.gaps) == [(5, 3)]


def test_overwritten_samples_are_refused_not_returned_stale():
    ring = SampleRing(capacity=10, n_channels=1)
    ring.write(0, np.arange(25, dtype=np.int16)[:, None])
    assert ring.oldest == 15
    with pytest.raises(LookupError, match="holds 15–25"):
        ring.read(10, 5)
    with pytest.raises(ValueError, match="before the ring's end"):
        ring.write(3, np.zeros((1, 1), np.int16))


def test_wait_for_end_returns_when_a_later_write_reaches_the_sample():
    ring = SampleRing(100, 1)
    ring.write(0, np.zeros((10, 1), np.int16))
    writer = threading.Timer(0.05, ring.write, (10, np.ones((20, 1), np.int16)))
    writer.start()
    assert ring.wait_for_end(30, timeout_s=5.0)
    assert ring.end == 30
    writer.join()


def test_wait_for_end_times_out_when_the_stream_stops_short():
    ring = SampleRing(100, 1)
    ring.write(0, np.zeros((10, 1), np.int16))
    assert not ring.wait_for_end(11, timeout_s=0.05)
