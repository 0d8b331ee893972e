"""The fail-safe rule, in one place: stop stimulating when the host cannot see.

Whatever stops the recording, kills a worker thread or blinds the host (a full
disk, a writer or runner error, the link lost, a latching board fault, a board
reboot, an error on the board's data) calls ``FailSafe.trip``: the board is
disarmed at once, a host-side fault latches (the runner refuses to arm until
``reset``), the recording keeps a ``fail_safe`` event and the outcome (its
``metadata.status``), and ``events.fault_raised`` tells every front end.
An emergency stop also holds until reset, and is the recording's outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from firmware_bridge.errors import DeviceDisconnected, DeviceError
from rig.core._events import RigEvents
from rig.core.runner import FinishReason, ProtocolRunner, RunnerStatus, RunState
from rig.recording import DiskFullError

log = logging.getLogger(__name__)

# A recording's outcome (metadata.status) when nothing went wrong.
COMPLETED = "completed"
CANCELLED = "cancelled"
EMERGENCY_STOP = "emergency_stop"
DISK_FULL = "disk_full"
UNPLUGGED = "unplugged"
CRASHED = "crashed"


def fault_outcome(name: str) -> str:
    """The outcome for a fault named ``name`` (``fault:HOST_LOSS``)."""
    return f"fault:{name}"


class EmergencyStopHeld(RuntimeError):
    """Arming or running was refused: an emergency stop has not been reset."""


class FailSafe:
    """Trips on anything that makes stimulating unsafe; holds until reset."""

    def __init__(
        self,
        device: Any,
        runner: ProtocolRunner,
        events: RigEvents,
        record_event: Callable[..., None],
    ) -> None:
        self._device = device
        self._runner = runner
        self._events = events
        self._record_event = record_event
        self._lock = threading.Lock()
        self.faults: list[str] = []  # every fault and trip, in order
        self.outcome: str | None = None  # the first trip since the recording began
        self.emergency_latched = False
        # An emergency stop pressed on the rig's machine (the GUI, a script's
        # Session.emergency_stop) holds against a remote client's reset
        # (rig.remote): who pressed it is said by the caller, not guessed.
        self.local_stop_latched = False
        self._last_finish: FinishReason | None = None  # of the last run

    def trip(self, reason: str, outcome: str) -> None:
        """Disarm now, latch a host-side fault, record why, say so."""
        self.disarm_quietly()
        with self._lock:
            self.outcome = self.outcome or outcome
            self.faults.append(reason)
        self._record_event("fail_safe", outcome=outcome, reason=reason)
        if self._runner.status.phase != RunState.FAULT:
            self._runner.fault(reason)
        self._events.fault_raised.emit(reason)

    def note(self, text: str) -> None:
        """A fault that does not stop stimulation (a corrupt frame dropped)."""
        with self._lock:
            self.faults.append(text)
        self._events.fault_raised.emit(text)

    def emergency_stop(self, *, remote: bool = False) -> None:
        """Disarm now and hold until ``reset``; the recording's outcome.
        ``remote``: pressed by a remote client (else on the rig's machine)."""
        with self._lock:
            self.emergency_latched = True
            self.local_stop_latched = self.local_stop_latched or not remote
            self.outcome = self.outcome or EMERGENCY_STOP
        log.warning("emergency stop: disarming; holds until reset")
        try:
            self._runner.emergency_stop()
        finally:
            self._record_event("emergency_stop")

    def refuse_if_latched(self, what: str) -> None:
        """Raise EmergencyStopHeld while an emergency stop holds."""
        if self.emergency_latched:
            raise EmergencyStopHeld(
                f"cannot {what}: the emergency stop holds until it is reset "
                "(Session.reset_fault, neurorig reset)"
            )

    def reset(self) -> None:
        """Release a held emergency stop and the runner's fault (board: separately)."""
        self._runner.reset_fault()
        self.emergency_latched = False
        self.local_stop_latched = False
        log.warning("reset: emergency stop and faults released (board disarmed)")

    def new_recording(self) -> None:
        """Outcomes belong to one recording: forget the last one's."""
        with self._lock:
            self.outcome = None
            self._last_finish = None

    def recording_outcome(self) -> str:
        """The recording's ``metadata.status``: the first trip or emergency
        stop, else how the last run finished."""
        if self.outcome is not None:
            return self.outcome
        cancelled = self._last_finish == FinishReason.CANCELLED
        return CANCELLED if cancelled else COMPLETED

    def on_run_status(self, status: RunnerStatus) -> None:
        """Keep how a run finished; a runner FAULT goes to ``on_runner_fault``."""
        if status.finish_reason is not None:
            self._last_finish = status.finish_reason
        if status.phase == RunState.FAULT:
            self.on_runner_fault(status.message)

    def on_recording_failed(self, error: Exception) -> None:
        """The recording stopped (a full disk, a writer error): trip."""
        self._events.error_occurred.emit(error)
        full = isinstance(error, DiskFullError)
        outcome = DISK_FULL if full else fault_outcome("recording")
        self.trip(f"recording stopped: {error}", outcome)

    def on_link_error(self, error: DeviceError) -> None:
        """The link to the board failed (unplugged, or the port failed): trip."""
        self._events.error_occurred.emit(error)
        gone = isinstance(error, DeviceDisconnected)
        self.trip(str(error), UNPLUGGED if gone else fault_outcome("link"))

    def on_runner_fault(self, message: str) -> None:
        """The runner entered FAULT: by ``trip`` (already handled), or by
        itself (a refused command, its thread failed): then trip."""
        with self._lock:
            handled = message in self.faults
        if handled:
            self.disarm_quietly()
        else:
            self.trip(message, fault_outcome("runner"))

    def disarm_quietly(self) -> None:
        """Disarm if the link is up; a failure is logged (the board's own
        watchdog disarms it when the host goes silent)."""
        if self._device.error is None:
            try:
                self._device.disarm()
            except DeviceError as exc:
                log.warning("disarming: %s", exc)
