"""The optical sync code on the timing LED (docs/optical-sync.md).

While the camera runs, this thread blinks the LED in the camera's view with a
pseudo-random code, one slot per camera period: for a 1-slot it sends
LED_PULSE of one period, aimed between two exposures so that exactly one
exposure sees it lit. The host's aim does not have to be right: the board's
LED_FLASHED events say when the LED really was on, in device samples, and the
frames are aligned to the triggers from those (rig.core.frame_alignment).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from analysis.sync_code import make_sync_code
from firmware_bridge.errors import DeviceError, DeviceTimeout
from rig.core.frame_clock import FrameClock

log = logging.getLogger(__name__)

CODE_SLOTS = 216_000  # an hour at 60 fps; the code wraps after it


class SyncLed:
    """Blinks the sync code while started (a thread of its own)."""

    def __init__(
        self, device: Any, clock: FrameClock, *, camera_rate_hz: float, seed: int = 0
    ) -> None:
        self.device = device
        self.clock = clock
        self.period_s = 1.0 / camera_rate_hz
        self.code = make_sync_code(CODE_SLOTS, seed=seed)
        self.pulses_sent = 0
        self.pulses_unanswered = 0  # no reply in time (they may have happened)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start blinking (after the camera trigger is on)."""
        self._thread = threading.Thread(target=self._loop, name="sync-led", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop blinking (before the camera trigger goes off)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _next_slot_time(self, now_s: float) -> float:
        """The next host time half a period after a trigger's arrival."""
        latest = self.clock.latest_trigger()
        phase_s = latest[2] if latest is not None else now_s
        half = self.period_s / 2
        m = math.ceil((now_s - phase_s - half) / self.period_s)
        return phase_s + half + m * self.period_s

    def _loop(self) -> None:
        slot = 0
        bits = self.code.bits
        while not self._stop.is_set():
            now = time.monotonic()
            due = self._next_slot_time(now)
            if due - now < 0.2 * self.period_s:
                due += self.period_s  # too close to send in time: the next one
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            bit = bits[slot % bits.size]
            slot += 1
            if not bit:
                continue
            try:
                self.device.led_pulse(self.period_s * self.code.pulse_periods)
                self.pulses_sent += 1
            except DeviceTimeout:
                # A late reply on a busy host: the board's LED_FLASHED events
                # say whether the pulse happened, so the code goes on (stopping
                # here left the rest of a recording unprovable).
                self.pulses_unanswered += 1
            except DeviceError as exc:  # the link is gone or the board refused
                log.warning("sync LED stopped: %s", exc)
                return
