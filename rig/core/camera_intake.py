"""Camera intake: every frame counted on the frame clock, its sync LED read,
handed to live tracking and to the recorder; the trigger and the sync code
started and stopped with the camera.

A frame's identity is proved by the optical sync code (rig.core.sync_led,
docs/optical-sync.md): the board blinks the timing LED with a pseudo-random
code; each frame's LED brightness, measured here, is the evidence that
rig.core.frame_alignment matches to the code when the recording ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis.sync_code import led_brightness
from firmware_bridge.device import Device
from firmware_bridge.errors import DeviceError
from rig.core._events import RigEvents
from rig.core.frame_clock import FrameClock
from rig.core.recorder import Recorder
from rig.core.sync_led import SyncLed

log = logging.getLogger(__name__)

RecordEvent = Callable[..., None]


class CameraIntake:
    """The camera's side of a Session (one per session with a camera)."""

    def __init__(
        self,
        camera: Any,
        device: Device,
        *,
        frame_clock: FrameClock,
        recorder: Recorder,
        events: RigEvents,
        rate_hz: float,
        led_region_px: tuple[int, int, int, int] | None,
        tracking: Callable[[], Any],
        record_event: RecordEvent,
    ) -> None:
        self.camera, self.device, self.rate_hz = camera, device, rate_hz
        self.frame_clock, self.recorder, self.events = frame_clock, recorder, events
        # None: no sync code (no LED region, or switched off for a calibration)
        self.led_region_px = led_region_px
        self._tracking, self._record_event = tracking, record_event
        self.sync_led: SyncLed | None = None
        self.latest_frame: tuple[Any, float] | None = None

    def start(self) -> None:
        """Start the camera, the board's trigger and the sync code."""
        self.camera.start(self.on_frame)
        self.device.set_camera_trigger(self.rate_hz)
        if self.led_region_px is not None:
            self.sync_led = SyncLed(
                self.device, self.frame_clock, camera_rate_hz=self.rate_hz
            )
            self.sync_led.start()

    def stop_sync_code_and_trigger(self) -> None:
        """Stop blinking the LED and the board's camera trigger (before the
        stream stops, so the last frames' triggers are still recorded)."""
        if self.sync_led is not None:
            self.sync_led.stop()
        if self.device.error is None:
            try:
                self.device.set_camera_trigger(0)
            except DeviceError as exc:
                log.warning("stopping the camera trigger: %s", exc)

    def stop_camera(self) -> None:
        """Stop the camera (after the stream, so frames in flight arrive)."""
        self.camera.stop()

    def on_frame(self, frame: Any, host_time: float) -> None:
        """Camera thread: count the frame; the recorder's thread writes it."""
        index = self.frame_clock.add_frame(host_time)
        led, repeat = None, False
        if self.led_region_px is not None:  # the sync code's evidence, ~50 µs
            led = float(led_brightness(frame[None], self.led_region_px)[0])
            previous = self.latest_frame
            repeat = previous is not None and np.array_equal(previous[0], frame)
        self.latest_frame = (frame, host_time)
        self.events.frame_captured.emit(frame, host_time, index)
        kept = self.recorder.record_frame(
            index,
            frame,
            host_time,
            led_brightness=led,
            repeat=repeat,
            # the camera's own number of this frame, where it gives one
            frame_number=getattr(self.camera, "frame_number", None),
        )
        # After the recorder has numbered the frame: its tracking is saved
        # into the recording under that number (tracking.jsonl).
        tracking = self._tracking()
        if tracking is not None:
            trigger = self.frame_clock.latest_trigger()
            tracking.submit(frame, None if trigger is None else trigger[0], index)
        if not kept:
            self._record_event("frame_dropped_by_host", frame_host_time_s=host_time)
