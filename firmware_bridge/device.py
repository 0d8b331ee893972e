"""Device: the board's API in SI units, over a SerialLink.

``Device.open(url)`` opens the port, starts the reader, does the handshake (protocol
version check, capabilities) and starts the heartbeat. Commands raise
``CommandRefused`` (with the field and allowed range in SI) when the board NAKs,
``DeviceTimeout`` when it does not answer, ``DeviceDisconnected`` once the port is
gone. Idempotent commands are retried by the link; a stimulus whose ACK is late or
lost is reconciled from the board's STIM_DELIVERED, never sent twice blindly, and
``CommandOutcomeUnknown`` (a ``DeviceTimeout``) says when that was not possible
(docs/protocol.md §9; ``request_counters`` counts it all). Samples and events
reach listeners registered with ``add_listener`` (called on the reader thread;
keep them quick).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firmware_bridge.errors import (
    CommandRefused,
    DeviceError,
    ProtocolVersionMismatch,
)
from firmware_bridge.link import (
    ErrorListener,
    RequestCounters,
    RetryPolicy,
    SampleListener,
    SerialLink,
)
from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Arm,
    CameraTrigger,
    Configure,
    Disarm,
    Field,
    GetStatus,
    Hello,
    HelloReply,
    LedPulse,
    LinkCounters,
    Message,
    Nak,
    NakCode,
    ResetFault,
    StartStream,
    Status,
    Stimulate,
    StopStream,
    TestSignal,
)
from firmware_bridge.stimulus import StimPulse
from firmware_bridge.transport import open_port

HEARTBEAT_PERIOD_S = 0.05  # against the board's 300 ms watchdog: 250 ms of margin

# What a HELLO_REPLY's capabilities may be (wire units, inclusive). A board
# claiming otherwise is broken or speaks another protocol, and its numbers
# would reach the session silently (an ADC range of 0 makes every µV 0, and
# the recording's nominal gain 0 is then refused by its reader).
CAPABILITY_RANGES = {
    "max_channels": (1, 32),  # CONFIGURE's channel mask is 32 bits
    "adc_bits": (8, 32),
    "n_stim_electrodes": (1, 16),  # MAX_STIM_ELECTRODES
    "adc_range_mvpp": (1, 100_000),
    "max_amplitude_mvpp": (1, 100_000),
    "min_duration_us": (0, 10_000_000),
    "max_duration_us": (1, 10_000_000),
    "max_train_rate_mhz": (1, 2**32 - 1),
    "max_charge_per_phase_nc": (1, 2**32 - 1),
    "max_on_time_ms_per_min": (1, 60_000),
    "load_ohm": (1, 2**32 - 1),
    "max_gain": (1, 65_535),
}
MAX_SAMPLE_RATE_HZ = 10_000_000  # a recording's reader allows 1–1e7 Hz


@dataclass(frozen=True, slots=True)
class HeartbeatStats:
    """How the host's heartbeat has done (firmware_bridge._heartbeat)."""

    max_gap_s: float = 0.0  # the longest time between two heartbeats written
    late: int = 0  # heartbeats written more than 150 ms after the one before
    withheld: int = 0  # not written: the serial reader had not run for 1 s
    realtime: bool = False  # its thread ran in the real-time scheduling class


@dataclass(frozen=True, slots=True)
class BoardInfo:
    """What the board said about itself in the handshake, in SI units."""

    protocol_version: int
    firmware_version: str
    board_id: str
    max_channels: int
    adc_bits: int
    adc_range_vpp: float
    n_stim_electrodes: int  # stimulation electrodes, 0..N−1 from the head
    max_amplitude_vpp: float
    min_duration_s: float
    max_duration_s: float
    max_train_rate_hz: float
    max_charge_per_phase_c: float  # per electrode
    max_on_time_s_per_min: float  # per electrode, in any 60 s
    load_ohm: float
    max_gain: int
    sample_rates_hz: tuple[int, ...]

    @classmethod
    def from_reply(cls, reply: HelloReply) -> BoardInfo:
        """Convert a HELLO_REPLY (wire units) to SI."""
        return cls(
            protocol_version=reply.protocol_version,
            firmware_version=reply.firmware_version,
            board_id=reply.board_id,
            max_channels=reply.max_channels,
            adc_bits=reply.adc_bits,
            adc_range_vpp=reply.adc_range_mvpp / 1000.0,
            n_stim_electrodes=reply.n_stim_electrodes,
            max_amplitude_vpp=reply.max_amplitude_mvpp / 1000.0,
            min_duration_s=reply.min_duration_us / 1e6,
            max_duration_s=reply.max_duration_us / 1e6,
            max_train_rate_hz=reply.max_train_rate_mhz / 1000.0,
            max_charge_per_phase_c=reply.max_charge_per_phase_nc * 1e-9,
            max_on_time_s_per_min=reply.max_on_time_ms_per_min / 1000.0,
            load_ohm=float(reply.load_ohm),
            max_gain=reply.max_gain,
            sample_rates_hz=reply.sample_rates_hz,
        )

    def volts_per_count(self, gain: float) -> float:
        """Nominal input-referred volts per ADC count at ``gain`` (uncalibrated)."""
        return self.adc_range_vpp / (2**self.adc_bits) / gain

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for recording metadata."""
        return {name: getattr(self, name) for name in self.__slots__}


def capability_problem(reply: HelloReply) -> str | None:
    """What is out of range in a HELLO_REPLY's capabilities, or None."""
    for name, (low, high) in CAPABILITY_RANGES.items():
        value = getattr(reply, name)
        if not low <= value <= high:
            return f"{name} = {value}; allowed {low}–{high}"
    if reply.min_duration_us > reply.max_duration_us:
        return (
            f"min_duration_us = {reply.min_duration_us} > max_duration_us = "
            f"{reply.max_duration_us}; allowed min ≤ max"
        )
    rates = reply.sample_rates_hz
    if not rates or not all(1 <= r <= MAX_SAMPLE_RATE_HZ for r in rates):
        return (
            f"sample_rates_hz = {list(rates)[:8]}; allowed one or more rates, "
            f"each 1–{MAX_SAMPLE_RATE_HZ} Hz"
        )
    return None


class Device:
    """The stimulator/recorder board behind one serial port."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.info: BoardInfo | None = None
        self.sample_rate_hz: int | None = None
        self.channels: tuple[int, ...] = ()
        self.gain: int | None = None
        # Of heartbeats stopped so far (``heartbeat_stats`` adds the running one).
        self._heartbeat_done = HeartbeatStats()
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        url: str,
        *,
        timeout_s: float = 1.0,
        allow_network: bool = False,
        heartbeat: bool = True,
        retry: RetryPolicy | None = None,
    ) -> Device:
        """Open the board on ``url`` (a port path; a pyserial URL for tests) and
        connect. The simulated rig (``sim://``) is opened by ``rig.open_rig``,
        which starts it on a pseudo-terminal and opens that port here.
        ``timeout_s`` is per attempt; ``retry`` bounds the link's retries."""
        link = SerialLink(open_port(url, allow_network=allow_network), retry=retry)
        device = cls(link)
        try:
            link.start()
            device.connect(timeout_s=timeout_s)
        except BaseException:
            device.close()
            raise
        if heartbeat:
            device.start_heartbeat()
        return device

    def connect(self, *, timeout_s: float = 1.0) -> BoardInfo:
        """Handshake: check the protocol version and read the capabilities."""
        reply = self.link.request(Hello(PROTOCOL_VERSION), timeout_s=timeout_s)
        if isinstance(reply, Nak):
            if reply.error == NakCode.VERSION_MISMATCH:
                raise ProtocolVersionMismatch(PROTOCOL_VERSION, reply.allowed_min)
            raise CommandRefused(reply)
        if not isinstance(reply, HelloReply):
            raise DeviceError(f"unexpected reply to HELLO: {reply!r}")
        if reply.protocol_version != PROTOCOL_VERSION:
            raise ProtocolVersionMismatch(PROTOCOL_VERSION, reply.protocol_version)
        problem = capability_problem(reply)
        if problem is not None:
            raise DeviceError(
                f"HELLO_REPLY on {self.link.port.name}: {problem} (a broken board, "
                "or not one this host can use)"
            )
        self.info = BoardInfo.from_reply(reply)
        return self.info

    def start_heartbeat(self) -> None:
        """Send HEARTBEAT every 50 ms from a thread of its own (the link's:
        without the GIL where the system allows, firmware_bridge._heartbeat)."""
        self.link.start_heartbeat(HEARTBEAT_PERIOD_S)

    def stop_heartbeat(self) -> None:
        """Stop sending heartbeats (the board then faults within 300 ms if armed)."""
        self._heartbeat_done = self.heartbeat_stats  # keep its figures
        self.link.stop_heartbeat()

    @property
    def heartbeat_stats(self) -> HeartbeatStats:
        """How the heartbeat has done since the device opened."""
        running = self.link.heartbeat
        done = self._heartbeat_done
        if running is None:
            return done
        return HeartbeatStats(
            max_gap_s=max(done.max_gap_s, running.max_gap_s),
            late=done.late + running.late,
            withheld=done.withheld + running.withheld,
            realtime=running.realtime,
        )

    def close(self) -> None:
        """Disarm and stop streaming if possible, then close the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.stop_heartbeat()
        if self.link.error is None and self.info is not None:
            for message in (Disarm(), StopStream()):
                try:
                    self.link.request(message, timeout_s=0.5)
                except DeviceError:
                    break
        self.link.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ listeners

    def add_listener(self, listener: SampleListener) -> None:
        """Receive every decoded batch (samples, gaps, events) on the reader thread."""
        self.link.add_listener(listener)

    def remove_listener(self, listener: SampleListener) -> None:
        """Stop receiving batches."""
        self.link.remove_listener(listener)

    def add_error_listener(self, listener: ErrorListener) -> None:
        """Be told once when the port fails (unplug)."""
        self.link.add_error_listener(listener)

    @property
    def counters(self) -> LinkCounters:
        """Link counters: samples received and lost, corrupt frames, ..."""
        return self.link.counters

    @property
    def request_counters(self) -> RequestCounters:
        """Commands sent, retried, reconciled, timed out (docs/protocol.md §9)."""
        return self.link.request_counters

    @property
    def error(self) -> DeviceError | None:
        """The error that ended the link, if any."""
        return self.link.error

    # ------------------------------------------------------------- commands

    def configure(
        self, *, sample_rate_hz: int, channels: int | Sequence[int], gain: int
    ) -> None:
        """Set the sample rate, the enabled channels (a count or indices), the gain."""
        indices = (
            tuple(range(channels)) if isinstance(channels, int) else tuple(channels)
        )
        mask = 0
        for index in indices:
            mask |= 1 << index
        self._command(Configure(int(sample_rate_hz), mask, int(gain)))
        self.sample_rate_hz = int(sample_rate_hz)
        self.channels = tuple(sorted(indices))
        self.gain = int(gain)
        self.link.decoder.set_channels(len(indices))

    def start_stream(self) -> int:
        """Start streaming; return the sample number of the first sample."""
        return self._command(StartStream()).sample_index

    def stop_stream(self) -> int:
        """Stop streaming; return the sample number of the first sample not sent."""
        return self._command(StopStream()).sample_index

    def arm(self) -> None:
        """Allow stimulation."""
        self._command(Arm())

    def disarm(self) -> None:
        """Emergency stop: no new pulse; the running one finishes (charge-balanced)."""
        self._command(Disarm())

    def reset_fault(self) -> None:
        """Clear a latched fault (the board stays disarmed)."""
        self._command(ResetFault())

    def stimulate(self, pulse: StimPulse) -> int:
        """Deliver ``pulse``; return the sample number of its onset.

        Never sent twice blindly. If the ACK is late or lost, the onset comes from
        the late ACK or from the board's STIM_DELIVERED for this command; if
        neither comes, ``CommandOutcomeUnknown`` says the stimulus may or may not
        have been delivered (the recording's STIM_DELIVERED events tell). A
        command the board provably never received is sent once more.
        """
        return self._command(Stimulate.from_pulse(pulse)).sample_index

    def test_signal(
        self,
        *,
        enable: bool,
        channels: Sequence[int] = (),
        amplitude_vpp: float = 0.0,
        frequency_hz: int = 0,
    ) -> None:
        """Inject (or stop) a known sine at the amplifier inputs (input-referred)."""
        mask = sum(1 << c for c in channels)
        self._command(
            TestSignal(int(enable), mask, round(amplitude_vpp * 1e6), int(frequency_hz))
        )

    def led_pulse(self, duration_s: float) -> int:
        """Flash the timing LED; return the sample number it switched on at."""
        return self._command(LedPulse(round(duration_s * 1e6))).sample_index

    def set_camera_trigger(self, rate_hz: float) -> int:
        """Trigger the camera at ``rate_hz`` (0 = off); return the ACK sample."""
        period_us = 0 if rate_hz <= 0 else round(1e6 / rate_hz)
        return self._command(CameraTrigger(period_us)).sample_index

    def status(self) -> Status:
        """Ask the board for its state."""
        reply = self.link.request(GetStatus())
        if isinstance(reply, Nak):
            raise CommandRefused(reply)
        assert isinstance(reply, Status)
        return reply

    def _command(self, message: Message, *, timeout_s: float = 1.0) -> Ack:
        reply = self.link.request(message, timeout_s=timeout_s)
        if isinstance(reply, Nak):
            raise CommandRefused(reply)
        if not isinstance(reply, Ack):
            raise DeviceError(
                f"unexpected reply to {type(message).__name__}: {reply!r}"
            )
        return reply


__all__ = ["BoardInfo", "Device", "Field", "HeartbeatStats"]
