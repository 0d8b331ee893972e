"""What each board message means to the session: the event it records.

A pure translation, in one table-like function, so that the events a recording
holds (docs/recording-format.md) are written in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware_bridge.protocol import (
    CameraTriggered,
    Fault,
    FaultCode,
    LedFlashed,
    Log,
    Message,
    StimDelivered,
    StreamAnomaly,
)


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
        "pair": message.pair,
        "polarity": message.polarity,
        "pulse_index": message.pulse_index,
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
