"""Stimulator: the one way to put a pulse on the worm.

Every stimulus, whether from the protocol runner, the closed loop, a calibration
procedure or a script, goes through ``Stimulator.stimulate``: it checks the pulse
against the rig's safety limits and the on-time budget, corrects the command
with the stimulator calibration (so the electrodes receive the amplitude asked
for, and that corrected command is checked too), delivers it and remembers which
requested amplitude each command stood for (the board reports only what it was
commanded).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware_bridge.stimulus import StimPulse
from rig.safety import OnTimeBudget, SafetyLimits


class Stimulator:
    """Arms, disarms and stimulates one board within its limits (thread-safe)."""

    def __init__(
        self,
        device: Any,
        *,
        limits: SafetyLimits | None,
        calibration: Any = None,
        before_send: Callable[[StimPulse, StimPulse], None] | None = None,
    ) -> None:
        self.device = device
        # Called with (requested, command) once the checks pass, before the
        # command goes out: the session records it, so a host killed right
        # after the board delivered still leaves the stimulus on disk.
        self.before_send = before_send
        self.limits = limits
        # The on-time budget is a running sum over the last minute: shared by
        # every caller, so two callers together cannot exceed it.
        self.on_time = OnTimeBudget(limits.max_on_time_s_per_min) if limits else None
        self.calibration = calibration  # calibration.StimulatorCalibration or None
        self._requested: dict[int, float] = {}  # commanded mVpp -> requested Vpp
        self._lock = threading.Lock()

    @property
    def n_electrodes(self) -> int | None:
        """The board's stimulation electrodes (from its handshake), or None."""
        info = getattr(self.device, "info", None)
        return getattr(info, "n_stim_electrodes", None)

    def arm(self) -> None:
        """Arm the board (stimulation allowed)."""
        self.device.arm()

    def disarm(self) -> None:
        """Disarm the board (the pulse in progress finishes charge-balanced)."""
        self.device.disarm()

    def stimulate(self, pulse: StimPulse) -> int:
        """Check ``pulse``, deliver it, return its onset (board samples).

        Raises ``rig.safety.SafetyError`` (a ValueError naming the field and what
        is allowed) before anything reaches the board when a limit is exceeded.
        """
        with self._lock:
            now_s = time.monotonic()
            n_electrodes = self.n_electrodes
            if self.limits is not None and self.on_time is not None:
                self.limits.check(pulse, n_electrodes=n_electrodes)
                self.on_time.check(pulse, now_s)
            command = pulse
            if self.calibration is not None:
                command = dataclasses.replace(
                    pulse,
                    amplitude_vpp=self.calibration.command_for(pulse.amplitude_vpp),
                )
                if self.limits is not None:
                    self.limits.check(
                        command,
                        "after the stimulator calibration",
                        n_electrodes=n_electrodes,
                    )
                self._requested[round(command.amplitude_vpp * 1000)] = (
                    pulse.amplitude_vpp
                )
            if self.before_send is not None:
                self.before_send(pulse, command)
            onset = int(self.device.stimulate(command))
            if self.on_time is not None:
                self.on_time.record(pulse, now_s)
            return onset

    def requested_vpp(self, commanded_mvpp: int) -> float:
        """The amplitude asked for that became this command (after correction)."""
        return self._requested.get(commanded_mvpp, commanded_mvpp / 1000.0)
