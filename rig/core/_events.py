"""RigEvents: the session's plain-Python signals (thread-safe callback lists).

Every signal has fixed argument types, written here. Callbacks run on the thread
that emits: the acquisition relay thread, the runner thread or the caller's.
``rig.gui._bridge`` re-emits them as Qt signals with queued connections, so GUI
slots always run on the GUI thread. Names are snake_case past tense.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Signal:
    """A list of callbacks; ``emit`` calls each, isolating their exceptions."""

    def __init__(self, name: str, *arg_names: str, high_rate: bool = False) -> None:
        self.name = name
        self.arg_names = arg_names
        # A high-rate signal (every camera frame) is for code on the emitting
        # thread; bridges that forward to a GUI skip it (the GUI pulls frames).
        self.high_rate = high_rate
        self._callbacks: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback(*args)`` on every emit; returns it (usable as decorator)."""
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` (no error if it was not connected)."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every callback; one that raises is logged and does not stop the rest."""
        if len(args) != len(self.arg_names):
            raise TypeError(f"{self.name} takes {self.arg_names}, got {len(args)} args")
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(*args)
            except Exception:
                log.exception("listener of %s failed", self.name)


class RigEvents:
    """All events of a Session. Samples are pulled (the ring), not pushed."""

    def __init__(self) -> None:
        # (sample: int, fields: dict) — delivered parameters in SI
        self.stim_delivered = Signal("stim_delivered", "sample", "fields")
        # (status: RunnerStatus)
        self.run_state_changed = Signal("run_state_changed", "status")
        # (trial_index: int, result: dict) — per-stimulus online analysis
        self.response_measured = Signal("response_measured", "trial", "result")
        # (trial_index: int, result: dict) — per-stimulus twitch, from live tracking
        self.motion_measured = Signal("motion_measured", "trial", "result")
        # (message: str) — a fault reported by the board or the host
        self.fault_raised = Signal("fault_raised", "message")
        # (error: Exception) — link lost, disk full, camera gone
        self.error_occurred = Signal("error_occurred", "error")
        # (path: str | None) — recording started (path) or stopped (None)
        self.recording_changed = Signal("recording_changed", "path")
        # (armed: bool)
        self.armed_changed = Signal("armed_changed", "armed")
        # (state: dict) — closed-loop optimiser decided (observations, proposal)
        self.optimiser_updated = Signal("optimiser_updated", "state")
        # (trial, onset_sample: int) — the runner delivered a trial (runner thread)
        self.trial_delivered = Signal("trial_delivered", "trial", "onset_sample")
        # (sample: int, text: str) — a timestamped note went into the recording
        self.note_added = Signal("note_added", "sample", "text")
        # (frame: ndarray, host_time_s: float, frame_index: int) — every camera
        # frame, on the camera thread: keep listeners quick
        self.frame_captured = Signal(
            "frame_captured", "frame", "host_time_s", "frame_index", high_rate=True
        )

    def all(self) -> list[Signal]:
        """Every low-rate signal, for bridges that forward them all."""
        return [
            v for v in vars(self).values() if isinstance(v, Signal) and not v.high_rate
        ]
