"""The board's timing outputs: camera triggers at the requested rate, the
timing LED, each reported at its sample on the device clock."""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.protocol import CameraTriggered, LedFlashed
from tests.behaviour._board import Collector, configure, open_board, wait_for


def test_camera_triggers_come_at_the_requested_rate_until_switched_off(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        rate = configure(device)
        t0 = time.monotonic()
        on = device.set_camera_trigger(60.0)
        time.sleep(0.5)
        off = device.set_camera_trigger(0)
        wall_s = time.monotonic() - t0
        time.sleep(0.1)
        triggers = seen.messages(CameraTriggered)
    # 16 667 µs rounded to whole samples: 500 samples at 30 kS/s.
    period = round(round(1e6 / 60.0) * rate / 1e6)
    samples = np.array([t.sample_index for t in triggers])
    assert 0.4 * 60 <= len(triggers) <= 1.1 * wall_s * 60  # wall clock: loose
    assert [t.trigger_count for t in triggers] == list(range(len(triggers)))
    assert np.all(np.diff(samples) == period)  # device clock: exact
    assert on < samples[0] <= on + period
    assert samples[-1] <= off  # none after switching off


def test_the_led_pulse_is_reported_at_its_onset_with_its_duration(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        configure(device)
        onset = device.led_pulse(0.02)
        assert wait_for(lambda: seen.messages(LedFlashed), 1.0)
        [flash] = seen.messages(LedFlashed)
    assert (flash.sample_index, flash.duration_us) == (onset, 20_000)
