"""ProtocolRunner: runs a plan of trials on a worker thread; an explicit state machine.

```mermaid
stateDiagram-v2
    [*] --> IDLE
    IDLE --> ARMED: arm()
    ARMED --> IDLE: disarm()
    ARMED --> RUNNING: start(plan)
    RUNNING --> PAUSED: set_paused(True) (at the next trial boundary)
    PAUSED --> RUNNING: set_paused(False)
    RUNNING --> STOPPING: cancel() / plan done
    PAUSED --> STOPPING: cancel()
    STOPPING --> ARMED: last trial finished
    IDLE --> FAULT: board fault / link lost
    ARMED --> FAULT: board fault / link lost
    RUNNING --> FAULT: board fault / link lost / refused command
    PAUSED --> FAULT: board fault / link lost
    FAULT --> IDLE: reset_fault()
    ARMED --> IDLE: emergency_stop()
    RUNNING --> IDLE: emergency_stop()
    PAUSED --> IDLE: emergency_stop()
```

``cancel()`` and ``set_paused()`` take a lock and *request* a change; the loop acts
on it at the next trial boundary, never in the middle of a stimulus.
``emergency_stop()`` is different: it disarms the board at once (the board lets the
pulse being delivered finish, charge-balanced) from whatever thread calls it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from firmware_bridge.errors import DeviceError
from firmware_bridge.stimulus import StimPulse


class RunState(StrEnum):
    """Phases of the runner."""

    IDLE = "idle"
    ARMED = "armed"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FAULT = "fault"


class FinishReason(StrEnum):
    """Why a run ended."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EMERGENCY_STOP = "emergency_stop"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class RunnerStatus:
    """What the runner is doing; emitted on every change."""

    phase: RunState
    trial: int = 0  # trials delivered so far in this run
    n_trials: int = 0
    finish_reason: FinishReason | None = None
    message: str = ""


class TrialLike(Protocol):
    """What the runner needs of a planned trial (rig.protocols.Trial has it)."""

    index: int
    pulse: StimPulse
    onset_s: float


class StimulatorLike(Protocol):
    """What the runner needs to stimulate (rig.core.stimulator.Stimulator has it)."""

    def stimulate(self, pulse: StimPulse) -> int:
        """Deliver a checked pulse; return its onset sample."""
        ...

    def arm(self) -> None:
        """Allow stimulation."""
        ...

    def disarm(self) -> None:
        """Stop allowing stimulation."""
        ...


TrialCallback = Callable[[Any, int], None]  # (trial, onset_sample)
NextTrial = Callable[[int], Any]  # closed loop: trial number -> next trial or None


class ProtocolRunner:
    """Delivers trials at their scheduled times; pausable, cancellable, fault-aware."""

    def __init__(
        self,
        stimulator: StimulatorLike,
        *,
        on_status: Callable[[RunnerStatus], None] | None = None,
        on_trial: TrialCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stimulator = stimulator
        self._on_status = on_status or (lambda status: None)
        self._on_trial = on_trial or (lambda trial, onset: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._status = RunnerStatus(RunState.IDLE)
        self._cancel = False
        self._paused = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._paused_for = 0.0
        self._emergency = False

    # ------------------------------------------------------------ status

    @property
    def status(self) -> RunnerStatus:
        """The current status."""
        return self._status

    def _set(self, **changes: Any) -> None:
        with self._lock:
            fields: dict[str, Any] = {
                "phase": self._status.phase,
                "trial": self._status.trial,
                "n_trials": self._status.n_trials,
                "finish_reason": self._status.finish_reason,
                "message": self._status.message,
            }
            fields.update(changes)
            self._status = RunnerStatus(**fields)
            status = self._status
        self._on_status(status)

    # ------------------------------------------------------------ commands

    def arm(self) -> None:
        """IDLE -> ARMED (arms the board)."""
        if self._status.phase not in (RunState.IDLE, RunState.ARMED):
            raise RuntimeError(f"cannot arm while {self._status.phase.value}")
        self._stimulator.arm()
        self._set(phase=RunState.ARMED, message="")

    def disarm(self) -> None:
        """ARMED -> IDLE. During a run, use cancel() or emergency_stop()."""
        if self._status.phase in (RunState.RUNNING, RunState.PAUSED):
            raise RuntimeError("a run is in progress: cancel() or emergency_stop()")
        self._stimulator.disarm()
        if self._status.phase != RunState.FAULT:
            self._set(phase=RunState.IDLE)

    def start(self, trials: Iterable[Any] | NextTrial, n_trials: int = 0) -> None:
        """ARMED -> RUNNING: run ``trials`` (a plan, or a closed-loop chooser).

        ``trials`` is an iterable of trial objects (``index``, ``pulse``,
        ``onset_s`` from the run's start), or a callable returning the next trial
        given how many were delivered (None ends the run) for closed-loop runs.
        """
        if self._status.phase != RunState.ARMED:
            raise RuntimeError(
                f"cannot start a run while {self._status.phase.value}: arm first"
            )
        with self._lock:
            self._cancel = False
            self._paused = False
            self._emergency = False
        self._set(
            phase=RunState.RUNNING, trial=0, n_trials=n_trials, finish_reason=None
        )
        self._thread = threading.Thread(
            target=self._run, args=(trials,), name="protocol-runner", daemon=True
        )
        self._thread.start()

    def set_paused(self, paused: bool) -> None:
        """Request a pause (or resume); acted on at the next trial boundary."""
        with self._lock:
            self._paused = paused
        self._wake.set()

    def cancel(self) -> None:
        """Request the run to stop at the next trial boundary."""
        with self._lock:
            self._cancel = True
        self._wake.set()

    def emergency_stop(self) -> None:
        """Disarm the board now, whatever the state; the run ends as IDLE."""
        with self._lock:
            self._cancel = True
            self._emergency = True  # the loop must not report a plain cancel
            was_running = self._status.phase in (RunState.RUNNING, RunState.PAUSED)
        self._wake.set()
        try:
            self._stimulator.disarm()
        finally:
            reason = (
                FinishReason.EMERGENCY_STOP
                if was_running
                else self._status.finish_reason
            )
            self._set(
                phase=RunState.IDLE, finish_reason=reason, message="emergency stop"
            )

    def fault(self, message: str) -> None:
        """Enter FAULT (board fault or link lost); a running run stops."""
        with self._lock:
            self._cancel = True
        self._wake.set()
        self._set(
            phase=RunState.FAULT, finish_reason=FinishReason.FAULT, message=message
        )

    def reset_fault(self) -> None:
        """FAULT -> IDLE."""
        if self._status.phase == RunState.FAULT:
            self._set(phase=RunState.IDLE, message="")

    def wait(self, timeout_s: float | None = None) -> RunnerStatus:
        """Block until the current run's thread ends; return the final status."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._status

    # ------------------------------------------------------------ the loop

    def _run(self, trials: Iterable[Any] | NextTrial) -> None:
        # The thread's top: whatever escapes (a malformed calibration's
        # TypeError, a bug) must not leave the run "running" with the board
        # armed: it becomes a fault, which disarms (the session's fail-safe).
        try:
            self._run_trials(trials)
        except BaseException as exc:
            self.fault(f"the protocol runner failed: {type(exc).__name__}: {exc}")

    def _run_trials(self, trials: Iterable[Any] | NextTrial) -> None:
        self._started = self._clock()
        self._paused_for = 0.0
        delivered = 0
        source = trials if callable(trials) else iter(trials)
        while True:
            try:
                trial = source(delivered) if callable(source) else next(source, None)
            except Exception as exc:  # a chooser that fails ends the run visibly
                self.fault(f"choosing trial {delivered}: {type(exc).__name__}: {exc}")
                return
            if trial is None:
                break
            # Until the trial is due, a pause or cancel request interrupts the
            # wait and is handled at this boundary; the same trial then waits
            # again. Once due, the stimulus is delivered whole.
            while True:
                if not self._boundary():
                    self._finish(FinishReason.CANCELLED)
                    return
                if self._wait_until_due(float(trial.onset_s)):
                    break
            try:
                onset = self._stimulator.stimulate(trial.pulse)
            except (DeviceError, ValueError) as exc:  # ValueError: safety, calibration
                self.fault(f"trial {trial.index}: {exc}")
                return
            delivered += 1
            self._on_trial(trial, onset)
            self._set(trial=delivered)
        with self._lock:  # a chooser that ended because of a cancel request
            cancelled = self._cancel
        self._finish(FinishReason.CANCELLED if cancelled else FinishReason.COMPLETED)

    def _boundary(self) -> bool:
        """Act on pause/cancel requests; False when the run must end."""
        pause_began = None
        while True:
            with self._lock:
                cancel, paused = self._cancel, self._paused
            if cancel or self._status.phase == RunState.FAULT:
                return False
            if not paused:
                break
            if pause_began is None:
                pause_began = self._clock()
                self._set(phase=RunState.PAUSED)
            self._wake.wait(0.05)
            self._wake.clear()
        if pause_began is not None:
            # Time spent paused shifts the rest of the schedule.
            self._paused_for += self._clock() - pause_began
            self._set(phase=RunState.RUNNING)
        return True

    def _wait_until_due(self, onset_s: float) -> bool:
        """Sleep until the trial is due; False if a request interrupted the wait."""
        due = self._started + self._paused_for + onset_s
        while (wait_s := due - self._clock()) > 0:
            if self._wake.wait(min(wait_s, 0.05)):
                self._wake.clear()
                with self._lock:
                    if self._cancel or self._paused:
                        return False
        return True

    def _finish(self, reason: FinishReason) -> None:
        with self._lock:
            emergency = self._emergency
        if emergency or self._status.phase in (RunState.FAULT, RunState.IDLE):
            return  # a fault or an emergency stop sets the final state itself
        self._set(phase=RunState.STOPPING, finish_reason=reason)
        self._set(phase=RunState.ARMED)
