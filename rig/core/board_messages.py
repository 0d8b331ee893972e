"""What each board message means to the session: the event it records.

A pure translation, in one table-like function, so that the events a recording
holds (docs/recording-format.md) are written in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware_bridge.protocol import (
    Boot,
    CameraTriggered,
    Fault,
    FaultCode,
    LedFlashed,
    Log,
    Message,
    StimDelivered,
    StreamAnomaly,
)
from firmware_bridge.protocol.messages import si_anode


def fault_name(code: int) -> str:
    """The name of a board fault code (unknown codes by number)."""
    try:
        return FaultCode(code).name
    except ValueError:
        return f"fault {code}"


def fault_latches(code: int) -> bool:
    """True when the fault stops stimulation until reset (unknown ones do)."""
    try:
        return FaultCode(code).latches
    except ValueError:
        return True  # an unknown fault is treated as serious


def stimulus_fields(
    message: StimDelivered, requested_vpp: Callable[[int], float]
) -> dict[str, Any]:
    """A delivered stimulus's parameters in SI, with the amplitude asked for."""
    return {
        "amplitude_vpp": message.delivered_mvpp / 1000.0,
        "commanded_vpp": message.commanded_mvpp / 1000.0,
        "requested_vpp": requested_vpp(message.commanded_mvpp),
        "duration_s": message.duration_us / 1e6,
        "cathode": message.cathode,
        "anode": si_anode(message.anode),  # None: the common return
        "polarity": message.polarity,
        "pulse_index": message.pulse_index,
    }


def requested_fields(pulse: Any, command: Any) -> dict[str, Any]:
    """A ``stim_requested`` event's fields: the pulse asked for and the command
    sent for it (after the stimulator calibration's correction), SI."""
    return {
        "amplitude_vpp": pulse.amplitude_vpp,
        "commanded_vpp": command.amplitude_vpp,
        "duration_s": pulse.duration_s,
        "cathode": pulse.cathode,
        "anode": pulse.anode,
        "n_pulses": pulse.n_pulses,
    }


def trial_fields(trial: Any) -> dict[str, Any]:
    """A delivered trial's parameters for its ``trial`` event (SI)."""
    pulse = trial.pulse
    return {
        "index": int(trial.index),
        "amplitude_vpp": pulse.amplitude_vpp,
        "duration_s": pulse.duration_s,
        "cathode": pulse.cathode,
        "anode": pulse.anode,
        "polarity": int(pulse.polarity),
    }


def event_record(
    message: Message, requested_vpp: Callable[[int], float]
) -> tuple[int, str, dict[str, Any]] | None:
    """``(sample, kind, fields)`` to record for ``message``, or None."""
    if isinstance(message, StimDelivered):
        fields = stimulus_fields(message, requested_vpp)
        return message.sample_index, "stim_delivered", fields
    if isinstance(message, CameraTriggered):
        fields = {"trigger_count": message.trigger_count}
        return message.sample_index, "camera_trigger", fields
    if isinstance(message, Fault):
        fields = {"code": fault_name(message.code), "message": message.message}
        return message.sample_index, "fault", fields
    if isinstance(message, LedFlashed):
        return message.sample_index, "led", {"duration_s": message.duration_us / 1e6}
    if isinstance(message, StreamAnomaly):  # dropped by the decoder
        fields = {
            "anomaly": message.kind,
            "claimed_sample": message.claimed_index,
            "n_samples": message.n_samples,
            "message": message.message,
        }
        return message.sample_index, "stream_anomaly", fields
    if isinstance(message, Log):
        fields = {"level": message.level, "message": message.message}
        return message.sample_index, "log", fields
    return None  # Boot has no sample of its own: the session records it


class BoardMessages:
    """Acts on each message from the board: records it, keeps the delivered
    stimuli and the camera triggers, and trips the fail-safe on a latching
    fault or a reboot (relay thread)."""

    def __init__(
        self,
        *,
        recorder: Any,
        frame_clock: Any,
        events: Any,
        fail_safe: Any,
        requested_vpp: Callable[[int], float],
        record_now: Callable[..., None],
        fs_hz: float,
    ) -> None:
        self._fs_hz = fs_hz
        self._recorder = recorder
        self._frame_clock = frame_clock
        self._events = events
        self._fail_safe = fail_safe
        self._requested_vpp = requested_vpp
        self._record_now = record_now  # an event at the newest sample
        self.stimuli: list[dict[str, Any]] = []  # delivered, as STIM_DELIVERED said

    def handle(self, message: Message, host_time_s: float) -> None:
        """Record ``message`` and act on it."""
        record = event_record(message, self._requested_vpp)
        fields: dict[str, Any] = {}
        if record is not None:
            sample, kind, fields = record
            self._recorder.record_event(sample, kind, **fields)
        if isinstance(message, StimDelivered):  # fields: stimulus_fields(message)
            self.stimuli.append({"sample": message.sample_index, **fields})
            self._events.stim_delivered.emit(message.sample_index, fields)
        elif isinstance(message, CameraTriggered):
            self._frame_clock.add_trigger(
                message.sample_index, message.trigger_count, host_time_s
            )
        elif isinstance(message, LedFlashed):
            n_samples = round(message.duration_us * 1e-6 * self._fs_hz)
            self._frame_clock.add_led_flash(
                message.sample_index, n_samples, host_time_s
            )
        elif isinstance(message, Fault):
            name = fault_name(message.code)
            text = f"board fault {name}: {message.message}"
            if fault_latches(message.code):
                self._fail_safe.trip(text, f"fault:{name}")
            else:
                self._fail_safe.note(text)
        elif isinstance(message, Boot):
            self._record_now("board_rebooted", host_time=host_time_s)
            text = "the board rebooted: its sample counter restarted"
            self._fail_safe.trip(text, "fault:BOARD_REBOOTED")
        elif isinstance(message, StreamAnomaly):
            self._fail_safe.note(f"link: {message.message}")
