"""Errors of the host side of the link; each names what is wrong and what is allowed."""

from __future__ import annotations

from firmware_bridge.protocol.codes import Field, MsgType, NakCode
from firmware_bridge.protocol.messages import Nak


class DeviceError(RuntimeError):
    """Base class of everything the device layer raises."""


class DeviceDisconnected(DeviceError):
    """The port went away (unplugged, EIO, board powered off)."""


class DeviceTimeout(DeviceError):
    """The board did not answer a command in time (after any retries)."""


class CommandOutcomeUnknown(DeviceTimeout):
    """A command with an effect of its own (a stimulus, an LED flash) went
    unanswered, and the link could not tell whether the board executed it.

    The link never resends such a command blindly (docs/protocol.md §9): the
    recording's events (STIM_DELIVERED, LED_FLASHED, CAMERA_TRIGGERED) say what
    the board did. ``command`` is the command's name, ``seqs`` the seqs it was
    sent with.
    """

    def __init__(self, message: str, *, command: str, seqs: tuple[int, ...]) -> None:
        super().__init__(message)
        self.command = command
        self.seqs = seqs


class LinkError(DeviceError):
    """Something failed on the link's reader thread.

    ``fatal`` False: a listener raised; the reader carried on with the next batch
    and listener (``SerialLink.error`` stays None). ``fatal`` True: the reader
    itself failed and stopped (``SerialLink.error`` is this error).
    """

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class ProtocolVersionMismatch(DeviceError):
    """Host and board speak different protocol versions."""

    def __init__(self, host_version: int, board_version: int) -> None:
        super().__init__(
            f"protocol version mismatch: host speaks version {host_version}, "
            f"board speaks version {board_version}; update the host software or "
            "the board firmware so both speak the same version"
        )
        self.host_version = host_version
        self.board_version = board_version


# How to show a NAK field in SI units: (label, divisor to SI, SI unit).
_FIELD_UNITS: dict[Field, tuple[str, float, str]] = {
    Field.AMPLITUDE_MVPP: ("amplitude", 1000.0, "Vpp"),
    Field.DURATION_US: ("duration", 1e6, "s"),
    Field.CATHODE: ("cathode electrode", 1.0, ""),
    Field.ANODE: ("anode electrode", 1.0, ""),
    Field.POLARITY: ("polarity", 1.0, ""),
    Field.N_PULSES: ("pulses per train", 1.0, ""),
    Field.TRAIN_PERIOD_US: ("train period", 1e6, "s"),
    Field.SAMPLE_RATE_HZ: ("sample rate", 1.0, "Hz"),
    Field.CHANNEL_MASK: ("channel mask", 1.0, ""),
    Field.GAIN: ("gain", 1.0, "V/V"),
    Field.CHARGE_PER_PHASE_NC: ("charge per phase", 1e9, "C"),
    Field.ON_TIME_MS_PER_MIN: ("stimulation on-time in the last minute", 1000.0, "s"),
    Field.PROTOCOL_VERSION: ("protocol version", 1.0, ""),
    Field.TEST_FREQUENCY_HZ: ("test-signal frequency", 1.0, "Hz"),
    Field.TEST_AMPLITUDE_UVPP: ("test-signal amplitude", 1e6, "Vpp"),
    Field.CAMERA_PERIOD_US: ("camera trigger period", 1e6, "s"),
    Field.LED_DURATION_US: ("LED pulse duration", 1e6, "s"),
    Field.TEST_ENABLE: ("test-signal enable", 1.0, ""),
}


def _name(enum_type, value: int) -> str:
    try:
        return enum_type(value).name
    except ValueError:
        return f"code {value}"


class CommandRefused(DeviceError):
    """The board NAKed a command. ``nak`` holds the raw reply."""

    def __init__(self, nak: Nak) -> None:
        self.nak = nak
        self.error = _name(NakCode, nak.error)
        self.field = _name(Field, nak.field)
        super().__init__(describe_nak(nak))


def describe_nak(nak: Nak) -> str:
    """A sentence naming the command, the field, its value and the allowed range."""
    command = _name(MsgType, nak.cmd_type)
    error = _name(NakCode, nak.error)
    text = f"board refused {command}: {error}"
    try:
        field = Field(nak.field)
    except ValueError:
        field = Field.NONE
    if field in _FIELD_UNITS:
        label, scale, unit = _FIELD_UNITS[field]
        value = nak.value / scale
        low, high = nak.allowed_min / scale, nak.allowed_max / scale
        text += (
            f"; {label} {value:g} {unit} is outside the allowed {low:g}–{high:g} {unit}"
        ).replace("  ", " ")
    if nak.message:
        text += f" ({nak.message})"
    return text
