"""The relay thread's work on each batch from the board: keep the frame clock,
record the samples and the frame table, act on the board's messages.

A failure here would blind the host while the board may still stimulate, so
any exception trips the fail-safe (rig.core.fail_safe) instead of killing the
relay thread.
"""

from __future__ import annotations

import logging
from typing import Any

from firmware_bridge.protocol import Decoded
from rig.core import fail_safe as outcomes
from rig.core.board_messages import BoardMessages
from rig.core.fail_safe import FailSafe
from rig.core.frame_clock import FrameClock
from rig.core.recorder import Recorder

log = logging.getLogger(__name__)


class BoardRelay:
    """An Acquisition consumer: ``relay(decoded, host_time)`` per batch."""

    def __init__(
        self,
        ring: Any,
        *,
        frame_clock: FrameClock,
        recorder: Recorder,
        messages: BoardMessages,
        fail_safe: FailSafe,
        with_camera: bool,
        frame_offset_samples: int,
        frame_history_s: float,
    ) -> None:
        self.ring, self.frame_clock, self.recorder = ring, frame_clock, recorder
        self.messages, self.fail_safe = messages, fail_safe
        self.with_camera = with_camera
        # trigger to exposure, from the timing calibration
        self.frame_offset_samples = frame_offset_samples
        # camera/trigger history kept while not recording
        self.frame_history_s = frame_history_s

    def __call__(self, decoded: Decoded, host_time: float) -> None:
        """Relay thread: record the batch and act on the board's messages."""
        try:
            if self.ring.end is not None:
                self.frame_clock.add_progress(host_time, self.ring.end)
            if not self.recorder.busy:  # a recording needs its frames' history
                self.frame_clock.keep_recent(host_time, self.frame_history_s)
            self.recorder.record_batch(decoded)
            if self.with_camera:
                self.recorder.record_frame_table(
                    self.frame_clock, self.frame_offset_samples, host_time
                )
            for message in decoded.messages:
                self.messages.handle(message, host_time)
        except Exception as exc:  # a bug here would blind the host: fail safe
            log.exception("handling a batch from the board failed")
            reason = f"the host failed on the board's data: {exc!r}"
            self.fail_safe.trip(reason, outcomes.CRASHED)
