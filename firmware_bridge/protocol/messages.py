"""Message catalogue: one frozen dataclass per message type, in wire units.

Fields carry their wire unit in their name (``amplitude_mvpp``, ``duration_us``) and
are integers, so encoding is exact; ``firmware_bridge.device`` converts to and from SI.
Every multi-byte field is little-endian. ``pack()`` returns the payload only; the
frame layer (``framing.py``) adds type, seq and CRC. Pure, no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, cast

import numpy as np

from firmware_bridge.protocol.codes import MsgType
from firmware_bridge.protocol.framing import MAX_PAYLOAD_BYTES, FrameError
from firmware_bridge.stimulus import StimPulse

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MAX_CHANNELS = 32
COMMON_RETURN_ANODE = 0xFF  # the anode byte of a configuration against the common return


def wire_anode(anode: int | None) -> int:
    """The anode byte: the electrode, or 255 for the common return."""
    return COMMON_RETURN_ANODE if anode is None else int(anode)


def si_anode(anode: int) -> int | None:
    """The anode from its byte: None for the common return (255)."""
    return None if anode == COMMON_RETURN_ANODE else int(anode)


class Message:
    """Base: fixed-layout messages declare ``TYPE`` and ``LAYOUT`` (a struct format).

    Subclasses with a variable-length tail (text, sample block, rate list) override
    ``pack``/``unpack``.
    """

    TYPE: ClassVar[MsgType]
    LAYOUT: ClassVar[struct.Struct] = struct.Struct("<")

    def pack(self) -> bytes:
        """Return the payload bytes of this message."""
        # Every concrete message is a dataclass; the base is not.
        this = cast("DataclassInstance", self)
        return self.LAYOUT.pack(*(getattr(self, f.name) for f in fields(this)))

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        """Build the message from its payload; raise FrameError on a bad length."""
        _expect_length(cls, payload, cls.LAYOUT.size)
        return cls(*cls.LAYOUT.unpack(payload))


def _expect_length(cls: type, payload: bytes, size: int, *, at_least: bool = False):
    ok = len(payload) >= size if at_least else len(payload) == size
    if not ok:
        want = f"at least {size}" if at_least else f"{size}"
        raise FrameError(
            f"{cls.__name__} payload is {len(payload)} bytes, expected {want}"
        )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- host -> device


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Handshake request carrying the host's protocol version."""

    TYPE = MsgType.HELLO
    LAYOUT = struct.Struct("<H")
    protocol_version: int


@dataclass(frozen=True, slots=True)
class _Empty(Message):
    LAYOUT = struct.Struct("<")

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        _expect_length(cls, payload, 0)
        return cls()


@dataclass(frozen=True, slots=True)
class GetStatus(_Empty):
    """Ask for a STATUS reply."""

    TYPE = MsgType.GET_STATUS


@dataclass(frozen=True, slots=True)
class StartStream(_Empty):
    """Begin streaming DATA frames."""

    TYPE = MsgType.START_STREAM


@dataclass(frozen=True, slots=True)
class StopStream(_Empty):
    """Stop streaming; the ACK carries the index of the first sample not sent."""

    TYPE = MsgType.STOP_STREAM


@dataclass(frozen=True, slots=True)
class Heartbeat(_Empty):
    """Feed the board's host-loss watchdog."""

    TYPE = MsgType.HEARTBEAT


@dataclass(frozen=True, slots=True)
class Arm(_Empty):
    """Allow stimulation."""

    TYPE = MsgType.ARM


@dataclass(frozen=True, slots=True)
class Disarm(_Empty):
    """Finish the pulse being delivered (both phases), drop the rest; refuse pulses."""

    TYPE = MsgType.DISARM


@dataclass(frozen=True, slots=True)
class ResetFault(_Empty):
    """Clear a latched fault."""

    TYPE = MsgType.RESET_FAULT


@dataclass(frozen=True, slots=True)
class Configure(Message):
    """Sample rate, enabled channels (bit i = channel i) and amplifier gain (V/V)."""

    TYPE = MsgType.CONFIGURE
    LAYOUT = struct.Struct("<IIH")
    sample_rate_hz: int
    channel_mask: int
    gain: int

    @property
    def n_channels(self) -> int:
        """Number of enabled channels."""
        return bin(self.channel_mask).count("1")


@dataclass(frozen=True, slots=True)
class Stimulate(Message):
    """A bipolar sinusoidal pulse (or a train of ``n_pulses``) through the
    configuration ``cathode``–``anode`` (anode ``COMMON_RETURN_ANODE`` = 255:
    against the common return)."""

    TYPE = MsgType.STIMULATE
    LAYOUT = struct.Struct("<HIBBBHI")
    amplitude_mvpp: int
    duration_us: int
    cathode: int
    anode: int
    polarity: int
    n_pulses: int
    train_period_us: int

    @classmethod
    def from_pulse(cls, pulse: StimPulse) -> Stimulate:
        """Convert SI parameters to wire units (mV, µs), rounding to nearest."""
        period_us = round(1e6 / pulse.rate_hz) if pulse.n_pulses > 1 else 0
        values = {
            "amplitude_mvpp": (round(pulse.amplitude_vpp * 1000), 0xFFFF),
            "duration_us": (round(pulse.duration_s * 1e6), 0xFFFFFFFF),
            "cathode": (int(pulse.cathode), 0xFE),
            "anode": (
                COMMON_RETURN_ANODE if pulse.anode is None else int(pulse.anode),
                0xFF,
            ),
            "n_pulses": (int(pulse.n_pulses), 0xFFFF),
            "train_period_us": (period_us, 0xFFFFFFFF),
        }
        for name, (value, top) in values.items():
            if not 0 <= value <= top:
                raise ValueError(f"{name}={value} does not fit the wire range 0..{top}")
        return cls(
            amplitude_mvpp=values["amplitude_mvpp"][0],
            duration_us=values["duration_us"][0],
            cathode=values["cathode"][0],
            anode=values["anode"][0],
            polarity=int(pulse.polarity),
            n_pulses=values["n_pulses"][0],
            train_period_us=period_us,
        )


@dataclass(frozen=True, slots=True)
class TestSignal(Message):
    """Inject a known sine at the amplifier inputs of the masked channels."""

    TYPE = MsgType.TEST_SIGNAL
    LAYOUT = struct.Struct("<BIIH")
    __test__ = False  # not a pytest test class despite its name
    enable: int
    channel_mask: int
    amplitude_uvpp: int
    frequency_hz: int


@dataclass(frozen=True, slots=True)
class LedPulse(Message):
    """Switch the timing LED on for ``duration_us``."""

    TYPE = MsgType.LED_PULSE
    LAYOUT = struct.Struct("<I")
    duration_us: int


@dataclass(frozen=True, slots=True)
class CameraTrigger(Message):
    """Trigger the camera every ``period_us`` (rounded to whole samples); 0 = off."""

    TYPE = MsgType.CAMERA_TRIGGER
    LAYOUT = struct.Struct("<I")
    period_us: int


# ---------------------------------------------------------------- device -> host


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """Command accepted, stamped with the device sample index when it took effect.

    For STIMULATE, ``sample_index`` is the onset of the first pulse; for STOP_STREAM
    it is the index of the first sample that was not sent (so the host can account
    for every sample); otherwise the sample counter when the command was executed.
    """

    TYPE = MsgType.ACK
    LAYOUT = struct.Struct("<BBI")
    cmd_type: int
    cmd_seq: int
    sample_index: int


@dataclass(frozen=True, slots=True)
class Nak(Message):
    """Command refused: error code, offending field, its value and allowed range.

    ``value``, ``allowed_min`` and ``allowed_max`` are u32 (protocol version 2; they
    were i32 in version 1), like every command field they can name.
    """

    TYPE = MsgType.NAK
    LAYOUT = struct.Struct("<BBBBIII")
    cmd_type: int
    cmd_seq: int
    error: int
    field: int
    value: int
    allowed_min: int
    allowed_max: int
    message: str = ""

    def pack(self) -> bytes:
        """Fixed part, then the UTF-8 message to the end of the payload."""
        head = self.LAYOUT.pack(
            self.cmd_type,
            self.cmd_seq,
            self.error,
            self.field,
            self.value,
            self.allowed_min,
            self.allowed_max,
        )
        return head + self.message.encode("utf-8")

    @classmethod
    def unpack(cls, payload: bytes) -> Nak:
        """Parse the fixed part and the trailing text."""
        _expect_length(cls, payload, cls.LAYOUT.size, at_least=True)
        head = cls.LAYOUT.unpack_from(payload)
        # mypy cannot tell that LAYOUT yields exactly the fields before ``message``.
        return cls(*head, message=_text(payload[cls.LAYOUT.size :]))  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class HelloReply(Message):
    """Protocol and firmware versions and the board's capabilities and limits."""

    TYPE = MsgType.HELLO_REPLY
    LAYOUT = struct.Struct("<BHBBBBBBHHIIIIIHH")
    cmd_seq: int
    protocol_version: int
    firmware_major: int
    firmware_minor: int
    firmware_patch: int
    max_channels: int
    adc_bits: int
    n_stim_electrodes: int  # protocol 3 (was n_stim_pairs)
    adc_range_mvpp: int  # ADC input span, mV peak-to-peak (after the amplifier)
    max_amplitude_mvpp: int
    min_duration_us: int
    max_duration_us: int
    max_train_rate_mhz: int  # millihertz
    max_charge_per_phase_nc: int  # per electrode
    max_on_time_ms_per_min: int  # per electrode, in any 60 s
    load_ohm: int  # the board's nominal electrode load, for charge estimates
    max_gain: int
    sample_rates_hz: tuple[int, ...] = ()
    board_id: str = ""

    def pack(self) -> bytes:
        """Fixed part, rate count and list, then the UTF-8 board id."""
        fixed = [getattr(self, f.name) for f in fields(self)][:-2]
        rates = self.sample_rates_hz
        return (
            self.LAYOUT.pack(*fixed)
            + struct.pack(f"<B{len(rates)}I", len(rates), *rates)
            + self.board_id.encode("utf-8")
        )

    @classmethod
    def unpack(cls, payload: bytes) -> HelloReply:
        """Parse the fixed part, the rate list and the board id."""
        size = cls.LAYOUT.size
        _expect_length(cls, payload, size + 1, at_least=True)
        fixed = cls.LAYOUT.unpack_from(payload)
        n_rates = payload[size]
        end = size + 1 + 4 * n_rates
        _expect_length(cls, payload, end, at_least=True)
        rates = struct.unpack_from(f"<{n_rates}I", payload, size + 1)
        # mypy cannot tell that LAYOUT yields exactly the fields before the rates.
        return cls(  # type: ignore[misc]
            *fixed, sample_rates_hz=tuple(rates), board_id=_text(payload[end:])
        )

    @property
    def firmware_version(self) -> str:
        """``major.minor.patch``."""
        return f"{self.firmware_major}.{self.firmware_minor}.{self.firmware_patch}"


@dataclass(frozen=True, slots=True)
class Status(Message):
    """Reply to GET_STATUS: state flags (StatusFlag bits), fault and configuration."""

    TYPE = MsgType.STATUS
    LAYOUT = struct.Struct("<BBBIIIHI")
    cmd_seq: int
    flags: int
    fault: int
    sample_index: int
    sample_rate_hz: int
    channel_mask: int
    gain: int
    on_time_ms_last_min: int  # the busiest electrode's, in the last 60 s


@dataclass(frozen=True, slots=True, eq=False)
class Data(Message):
    """A block of samples: ``samples`` is int16 ``(n_samples, n_channels)``.

    On the wire: first_sample_index u32, n_channels u8, n_samples u16, then the
    samples little-endian int16, interleaved sample by sample (s0c0 s0c1 … s1c0 …).
    """

    TYPE = MsgType.DATA
    LAYOUT = struct.Struct("<IBH")
    first_sample_index: int
    samples: np.ndarray

    def pack(self) -> bytes:
        """Header then the little-endian interleaved samples."""
        block = np.ascontiguousarray(self.samples, dtype="<i2")
        n_samples, n_channels = block.shape
        head = self.LAYOUT.pack(self.first_sample_index, n_channels, n_samples)
        return head + block.tobytes()

    @classmethod
    def unpack(cls, payload: bytes) -> Data:
        """Parse header and samples; the length must match exactly."""
        _expect_length(cls, payload, cls.LAYOUT.size, at_least=True)
        first, n_channels, n_samples = cls.LAYOUT.unpack_from(payload)
        if not 1 <= n_channels <= MAX_CHANNELS:
            raise FrameError(f"Data n_channels {n_channels} outside 1..{MAX_CHANNELS}")
        _expect_length(cls, payload, cls.LAYOUT.size + 2 * n_channels * n_samples)
        block = np.frombuffer(payload, dtype="<i2", offset=cls.LAYOUT.size)
        return cls(first, block.reshape(n_samples, n_channels).astype(np.int16))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Data)
            and self.first_sample_index == other.first_sample_index
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StimDelivered(Message):
    """A pulse started at ``sample_index``; parameters as delivered.

    ``delivered_mvpp`` is what the board's stimulus monitor measured;
    ``commanded_mvpp`` what the STIMULATE asked for (after any correction).
    """

    TYPE = MsgType.STIM_DELIVERED
    LAYOUT = struct.Struct("<IBHHHIBBB")
    sample_index: int
    cmd_seq: int
    pulse_index: int
    commanded_mvpp: int
    delivered_mvpp: int
    duration_us: int
    cathode: int
    anode: int  # 255 = the common return
    polarity: int


@dataclass(frozen=True, slots=True)
class CameraTriggered(Message):
    """The camera trigger output pulsed at ``sample_index`` (count since enabled)."""

    TYPE = MsgType.CAMERA_TRIGGERED
    LAYOUT = struct.Struct("<II")
    sample_index: int
    trigger_count: int


@dataclass(frozen=True, slots=True)
class Fault(Message):
    """A fault (FaultCode) at ``sample_index``, with a human-readable text."""

    TYPE = MsgType.FAULT
    LAYOUT = struct.Struct("<IB")
    sample_index: int
    code: int
    message: str = ""

    def pack(self) -> bytes:
        """Fixed part then UTF-8 text."""
        return self.LAYOUT.pack(self.sample_index, self.code) + self.message.encode()

    @classmethod
    def unpack(cls, payload: bytes) -> Fault:
        """Parse fixed part and text."""
        _expect_length(cls, payload, cls.LAYOUT.size, at_least=True)
        index, code = cls.LAYOUT.unpack_from(payload)
        return cls(index, code, _text(payload[cls.LAYOUT.size :]))


@dataclass(frozen=True, slots=True)
class LedFlashed(Message):
    """The timing LED switched on at ``sample_index`` for ``duration_us``."""

    TYPE = MsgType.LED_FLASHED
    LAYOUT = struct.Struct("<II")
    sample_index: int
    duration_us: int


@dataclass(frozen=True, slots=True)
class Boot(Message):
    """The board started (power-up or reset); its sample counter restarts at 0."""

    TYPE = MsgType.BOOT
    LAYOUT = struct.Struct("<HBBBB")
    protocol_version: int
    firmware_major: int
    firmware_minor: int
    firmware_patch: int
    reset_cause: int  # FaultCode of the reset (0 = power-on)


@dataclass(frozen=True, slots=True)
class Log(Message):
    """A human-readable firmware message (level: 10 debug … 40 error)."""

    TYPE = MsgType.LOG
    LAYOUT = struct.Struct("<IB")
    sample_index: int
    level: int
    message: str = ""

    def pack(self) -> bytes:
        """Fixed part then UTF-8 text."""
        head = self.LAYOUT.pack(self.sample_index, self.level)
        return head + self.message.encode()

    @classmethod
    def unpack(cls, payload: bytes) -> Log:
        """Parse fixed part and text."""
        _expect_length(cls, payload, cls.LAYOUT.size, at_least=True)
        index, level = cls.LAYOUT.unpack_from(payload)
        return cls(index, level, _text(payload[cls.LAYOUT.size :]))


MESSAGE_CLASSES: dict[MsgType, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        GetStatus,
        Configure,
        StartStream,
        StopStream,
        Heartbeat,
        Arm,
        Disarm,
        ResetFault,
        Stimulate,
        TestSignal,
        LedPulse,
        CameraTrigger,
        Ack,
        Nak,
        HelloReply,
        Status,
        Data,
        StimDelivered,
        CameraTriggered,
        Fault,
        LedFlashed,
        Boot,
        Log,
    )
}
assert set(MESSAGE_CLASSES) == set(MsgType), "every MsgType needs a message class"


def parse_payload(msg_type: int, payload: bytes) -> Message:
    """Build the message object for a decoded frame; FrameError if unknown or bad."""
    try:
        cls = MESSAGE_CLASSES[MsgType(msg_type)]
    except ValueError:
        raise FrameError(f"unknown message type {msg_type:#04x}") from None
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the maximum")
    return cls.unpack(payload)
