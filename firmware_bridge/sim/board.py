"""The simulated board's firmware: bytes in, bytes out, on a simulated sample clock.

``SimBoard.receive(data)`` takes whatever the host wrote; ``advance(n)`` moves the
sample clock on by ``n`` samples. Both return the frames the board sends, as
``(kind, first_sample, n_samples, bytes)`` tuples, so the transport (and the
fault injector) know what each frame carries. The board enforces its own
interlocks exactly as docs/protocol.md §5 says, whatever the host checked: every
field of every command is range-checked and refused with a NAK naming it. Neither
call ever raises: an unexpected error inside the firmware becomes a NAK
(INTERNAL_ERROR) and a latched FAULT(FIRMWARE_ERROR) that disarms the board, so
the pacing thread, and with it the host-loss watchdog, keeps running.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Boot,
    CameraTrigger,
    CameraTriggered,
    Data,
    Fault,
    FaultCode,
    Field,
    FrameError,
    Hello,
    HelloReply,
    LedFlashed,
    LedPulse,
    MsgType,
    Nak,
    NakCode,
    StatusFlag,
    StimDelivered,
    TestSignal,
    encode_frame,
)
from firmware_bridge.protocol.codes import HOST_TO_DEVICE
from firmware_bridge.protocol.framing import decode_frame
from firmware_bridge.protocol.messages import (
    COMMON_RETURN_ANODE,
    Status,
    parse_payload,
    si_anode,
)
from firmware_bridge.sim.worm import WormModel, to_adc_counts

FIRMWARE_VERSION = (0, 1, 0)
# Known truth for the gain calibration: the amplifier's real gain is 1.3 % above
# what CONFIGURE asked for, so nominal µV/count is off and calibration matters.
AMPLIFIER_GAIN_ERROR = 1.013
HEARTBEAT_TIMEOUT_S = 0.3
MAX_BLOCK_S = 0.010
U32_MAX = 0xFFFFFFFF
MAX_TRAIN_PERIOD_US = 10_000_000
CAMERA_PERIOD_US = (1_000, 10_000_000)  # 0 = off; at most 1 kHz, at least 0.1 Hz
LED_DURATION_US = (1, 1_000_000)
TEST_FREQUENCY_HZ = (1, 5_000)


@dataclass(frozen=True, slots=True)
class BoardLimits:
    """The simulated board's hardware limits (reported in HELLO_REPLY)."""

    max_channels: int = 32
    adc_bits: int = 16
    adc_range_vpp: float = 5.0
    # Stimulation electrodes along the raceway bed (HELLO_REPLY
    # n_stim_electrodes); None = as many as the worm's raceway has (8 by default).
    n_stim_electrodes: int | None = None
    max_amplitude_vpp: float = 6.0
    min_duration_s: float = 0.5e-3
    max_duration_s: float = 10e-3
    max_train_rate_hz: float = 100.0
    # Per electrode: a phase's charge flows through the cathode and the anode
    # (or the common return); 6 Vpp × 6.7 ms into 1 kΩ is 6.4 µC.
    max_charge_per_phase_c: float = 10e-6
    max_on_time_s_per_min: float = 6.0  # per electrode, in any 60 s
    load_ohm: float = 1000.0
    max_gain: int = 10_000
    sample_rates_hz: tuple[int, ...] = (10_000, 20_000, 30_000, 40_000)
    max_pulses: int = 1000
    max_test_amplitude_vpp: float = 5.0  # the test-signal DAC: the ADC span at gain 1


def delivered_vpp(commanded_vpp: float) -> float:
    """The stimulator's output stage compresses at high amplitude (known truth)."""
    return commanded_vpp * (1.0 - 0.03 * (commanded_vpp / 6.0) ** 2)


OutFrame = tuple[str, int, int, bytes]  # kind, first sample, n samples, bytes


def _electrodes(msg) -> tuple[int, ...]:
    """The array's electrodes a STIMULATE's current flows through."""
    anode = si_anode(msg.anode)
    return (msg.cathode,) if anode is None else (msg.cathode, anode)


def _no_camera(sample: int, count: int) -> None:
    """The camera-trigger hook of a board with no simulated camera."""


class SimBoard:
    """Firmware state machine driving a WormModel."""

    def __init__(
        self,
        model: WormModel,
        *,
        limits: BoardLimits | None = None,
        board_id: str = "neurorig-sim",
    ) -> None:
        self.model = model
        self.limits = limits or BoardLimits()
        self.board_id = board_id
        raceway = model.geometry.n_stim_electrodes
        self.n_stim_electrodes = self.limits.n_stim_electrodes or raceway
        if self.n_stim_electrodes != raceway:
            raise ValueError(
                f"BoardLimits.n_stim_electrodes = {self.n_stim_electrodes}: the "
                f"worm's raceway has {raceway} stimulation electrodes; allowed "
                f"{raceway} or None"
            )
        self.sample = 0  # the board's sample counter (next sample to take)
        self._rx = b""
        self._seq = 0
        self.firmware_errors = 0  # unexpected exceptions caught (a bug if not 0)
        # Hook for the simulated camera (set by SimulatedRig): sample, frame count.
        self.on_camera_trigger: Callable[[int, int], None] = _no_camera
        self.reset(cause=FaultCode.NONE)

    # ------------------------------------------------------------ state

    def reset(self, cause: FaultCode = FaultCode.NONE) -> list[OutFrame]:
        """Power-on or reboot: counter to 0, disarmed, not streaming; BOOT frame."""
        self.sample = 0
        self._seq = 0
        self.armed = False
        self.streaming = False
        self.fault = FaultCode.NONE
        self.sample_rate_hz = 30_000
        self.channel_mask = 0xF
        self.gain = 1000
        self.stream_next = 0  # next sample to send
        self.pulses: deque[tuple[int, int, int]] = deque()  # onset, cmd_seq, index
        self.current_pulse: tuple[int, int] | None = None  # onset, end sample
        self.current_stim: dict | None = None
        # Each pulse's onset sample, seconds on, and the electrodes it used.
        self.on_time: deque[tuple[int, float, tuple[int, ...]]] = deque()
        self.last_host_sample = 0
        self.camera_period = 0
        self.camera_next = 0
        self.camera_count = 0
        self.test_signal: tuple[int, float, float] | None = None  # mask, vpp, hz
        self.led_until = -1
        self.led_onset = 0
        # Recent flashes (onset, until): a frame rendered late must still show
        # what was lit at its exposure, not only the newest flash.
        self.led_history: deque[tuple[int, int]] = deque(maxlen=64)
        self.sent_samples = 0  # ground truth: samples put into DATA frames
        boot = Boot(PROTOCOL_VERSION, *FIRMWARE_VERSION, int(cause))
        return [self._frame(boot)]

    @property
    def n_channels(self) -> int:
        """Enabled channels."""
        return bin(self.channel_mask).count("1")

    def _frame(self, message, kind: str = "event", first=0, n=0) -> OutFrame:
        frame = encode_frame(message.TYPE, self._seq, message.pack())
        self._seq = (self._seq + 1) & 0xFF
        return (kind, first, n, frame)

    # ------------------------------------------------------------ host input

    def receive(self, data: bytes) -> list[OutFrame]:
        """Handle bytes from the host; return reply frames."""
        out: list[OutFrame] = []
        self._rx += data
        while b"\x00" in self._rx:
            raw, self._rx = self._rx.split(b"\x00", 1)
            if not raw:
                continue
            try:
                msg_type, seq, payload = decode_frame(raw)
            except FrameError:
                continue  # corrupt frames are dropped, never NAKed
            self.last_host_sample = self.sample  # any valid frame feeds the watchdog
            try:
                out.extend(self._command(msg_type, seq, payload))
            except Exception as exc:  # a firmware bug: refuse, fault, keep running
                out.extend(self._internal_error(msg_type, seq, exc))
        if len(self._rx) > 8192:
            self._rx = b""  # garbage without a delimiter
        return out

    def _ack(self, msg_type: int, seq: int, sample: int | None = None) -> OutFrame:
        return self._frame(
            Ack(msg_type, seq, self.sample if sample is None else sample)
        )

    def _nak(
        self, msg_type, seq, error, field=Field.NONE, value=0, lo=0, hi=0, text=""
    ):
        # value, min and max are u32 on the wire; derived quantities (charge,
        # on-time) saturate rather than fail to encode.
        value, lo, hi = (min(max(int(v), 0), U32_MAX) for v in (value, lo, hi))
        nak = Nak(msg_type, seq, int(error), int(field), value, lo, hi, text)
        return self._frame(nak)

    def _out_of_range(self, t, seq, checks) -> OutFrame | None:
        """NAK OUT_OF_RANGE naming the first field outside its range, else None.

        ``checks`` are ``(field, value, lo, hi)`` in the order docs/protocol.md
        lists them for the command.
        """
        for field, value, lo, hi in checks:
            if not lo <= value <= hi:
                return self._nak(t, seq, NakCode.OUT_OF_RANGE, field, value, lo, hi)
        return None

    def _internal_error(self, msg_type: int, seq: int, exc: Exception):
        text = f"{type(exc).__name__}: {exc}"[:200]
        return [
            self._nak(msg_type, seq, NakCode.INTERNAL_ERROR, text=text),
            *self._firmware_fault(f"command {msg_type:#04x} failed: {text}"),
        ]

    def _firmware_fault(self, text: str) -> list[OutFrame]:
        """An unexpected error: stop stimulating, disarm, latch FIRMWARE_ERROR."""
        self.firmware_errors += 1
        self.pulses.clear()
        self.armed = False
        self.fault = FaultCode.FIRMWARE_ERROR
        fault = Fault(self.sample & U32_MAX, int(FaultCode.FIRMWARE_ERROR), text)
        return [self._frame(fault)]

    @property
    def stimulating(self) -> bool:
        """A pulse is being delivered, or more of a train are due."""
        pulse = self.current_pulse
        return bool(self.pulses) or (pulse is not None and self.sample < pulse[1])

    @property
    def _channel_top(self) -> int:
        """Mask of every channel the board has (all ones)."""
        return (1 << min(self.limits.max_channels, self.model.geometry.n_channels)) - 1

    def _command(self, msg_type: int, seq: int, payload: bytes) -> list[OutFrame]:
        if msg_type not in HOST_TO_DEVICE:
            return [
                self._nak(
                    msg_type,
                    seq,
                    NakCode.UNKNOWN_COMMAND,
                    text=f"type {msg_type:#04x} is not a command",
                )
            ]
        try:
            message = parse_payload(msg_type, payload)
        except FrameError as exc:
            return [self._nak(msg_type, seq, NakCode.BAD_LENGTH, text=str(exc))]
        t = MsgType(msg_type)
        if t == MsgType.HELLO:
            assert isinstance(message, Hello)  # parse_payload's class for the type
            if message.protocol_version != PROTOCOL_VERSION:
                return [
                    self._nak(
                        t,
                        seq,
                        NakCode.VERSION_MISMATCH,
                        Field.PROTOCOL_VERSION,
                        message.protocol_version,
                        PROTOCOL_VERSION,
                        PROTOCOL_VERSION,
                        f"board speaks {PROTOCOL_VERSION}",
                    )
                ]
            return [self._frame(self._hello_reply(seq))]
        if t == MsgType.GET_STATUS:
            return [self._frame(self._status(seq))]
        if t == MsgType.HEARTBEAT:
            return [self._ack(t, seq)]
        if t == MsgType.CONFIGURE:
            return [self._configure(seq, message)]
        if t == MsgType.START_STREAM:
            self.streaming = True
            self.stream_next = self.sample
            return [self._ack(t, seq, self.sample)]
        if t == MsgType.STOP_STREAM:
            out = self._flush_data(self.sample)  # partial block first
            self.streaming = False
            return [*out, self._ack(t, seq, self.stream_next)]
        if t == MsgType.ARM:
            if self.fault != FaultCode.NONE:
                return [self._nak(t, seq, NakCode.FAULT_LATCHED, text=self.fault.name)]
            self.armed = True
            self.last_host_sample = self.sample
            return [self._ack(t, seq)]
        if t == MsgType.DISARM:
            self._stop_stimulation()
            self.armed = False
            return [self._ack(t, seq)]
        if t == MsgType.RESET_FAULT:
            self.fault = FaultCode.NONE
            return [self._ack(t, seq)]
        if t == MsgType.STIMULATE:
            return [self._stimulate(seq, message)]
        if t == MsgType.TEST_SIGNAL:
            assert isinstance(message, TestSignal)
            checks = [(Field.TEST_ENABLE, message.enable, 0, 1)]
            if message.enable:  # the other fields are ignored when disabling
                max_uvpp = round(self.limits.max_test_amplitude_vpp * 1e6)
                checks += [
                    (Field.CHANNEL_MASK, message.channel_mask, 0, self._channel_top),
                    (Field.TEST_AMPLITUDE_UVPP, message.amplitude_uvpp, 0, max_uvpp),
                    (Field.TEST_FREQUENCY_HZ, message.frequency_hz, *TEST_FREQUENCY_HZ),
                ]
            refused = self._out_of_range(t, seq, checks)
            if refused is not None:
                return [refused]
            self.test_signal = (
                (
                    message.channel_mask,
                    message.amplitude_uvpp * 1e-6,
                    message.frequency_hz,
                )
                if message.enable
                else None
            )
            return [self._ack(t, seq)]
        if t == MsgType.LED_PULSE:
            assert isinstance(message, LedPulse)
            refused = self._out_of_range(
                t, seq, [(Field.LED_DURATION_US, message.duration_us, *LED_DURATION_US)]
            )
            if refused is not None:
                return [refused]
            onset = self.sample + 1
            self.led_until = onset + round(
                message.duration_us * 1e-6 * self.sample_rate_hz
            )
            self.led_onset = onset
            self.led_history.append((onset, self.led_until))
            return [
                self._ack(t, seq, onset),
                self._frame(LedFlashed(onset, message.duration_us)),
            ]
        if t == MsgType.CAMERA_TRIGGER:
            assert isinstance(message, CameraTrigger)
            if message.period_us:  # 0 = off
                refused = self._out_of_range(
                    t,
                    seq,
                    [(Field.CAMERA_PERIOD_US, message.period_us, *CAMERA_PERIOD_US)],
                )
                if refused is not None:
                    return [refused]
            period = round(message.period_us * 1e-6 * self.sample_rate_hz)
            self.camera_period = period
            self.camera_next = self.sample + 1
            self.camera_count = 0
            return [self._ack(t, seq)]
        return [self._nak(t, seq, NakCode.UNKNOWN_COMMAND, text="host-only message")]

    def _hello_reply(self, seq: int) -> HelloReply:
        lim = self.limits
        return HelloReply(
            cmd_seq=seq,
            protocol_version=PROTOCOL_VERSION,
            firmware_major=FIRMWARE_VERSION[0],
            firmware_minor=FIRMWARE_VERSION[1],
            firmware_patch=FIRMWARE_VERSION[2],
            max_channels=lim.max_channels,
            adc_bits=lim.adc_bits,
            n_stim_electrodes=self.n_stim_electrodes,
            adc_range_mvpp=round(lim.adc_range_vpp * 1000),
            max_amplitude_mvpp=round(lim.max_amplitude_vpp * 1000),
            min_duration_us=round(lim.min_duration_s * 1e6),
            max_duration_us=round(lim.max_duration_s * 1e6),
            max_train_rate_mhz=round(lim.max_train_rate_hz * 1000),
            max_charge_per_phase_nc=round(lim.max_charge_per_phase_c * 1e9),
            max_on_time_ms_per_min=round(lim.max_on_time_s_per_min * 1000),
            load_ohm=round(lim.load_ohm),
            max_gain=lim.max_gain,
            sample_rates_hz=lim.sample_rates_hz,
            board_id=self.board_id,
        )

    def _status(self, seq: int) -> Status:
        flags = (
            (StatusFlag.ARMED if self.armed else 0)
            | (StatusFlag.STREAMING if self.streaming else 0)
            | (StatusFlag.STIMULATING if self.stimulating else 0)
            | (StatusFlag.FAULT_LATCHED if self.fault else 0)
            | (StatusFlag.TEST_SIGNAL if self.test_signal else 0)
        )
        on_ms = round(self._on_time_last_minute() * 1000)
        return Status(
            seq,
            int(flags),
            int(self.fault),
            self.sample & 0xFFFFFFFF,
            self.sample_rate_hz,
            self.channel_mask,
            self.gain,
            on_ms,
        )

    def _configure(self, seq: int, msg) -> OutFrame:
        t = MsgType.CONFIGURE
        lim = self.limits
        if self.streaming:
            return self._nak(t, seq, NakCode.INVALID_STATE, text="stop streaming first")
        if msg.sample_rate_hz not in lim.sample_rates_hz:
            return self._nak(
                t,
                seq,
                NakCode.OUT_OF_RANGE,
                Field.SAMPLE_RATE_HZ,
                msg.sample_rate_hz,
                min(lim.sample_rates_hz),
                max(lim.sample_rates_hz),
                f"rates: {list(lim.sample_rates_hz)}",
            )
        refused = self._out_of_range(
            t,
            seq,
            [
                # the mask of every channel is all ones: <= it means no other bit
                (Field.CHANNEL_MASK, msg.channel_mask, 1, self._channel_top),
                (Field.GAIN, msg.gain, 1, lim.max_gain),
            ],
        )
        if refused is not None:
            return refused
        if msg.sample_rate_hz != self.model.fs_hz:
            self.model.fs_hz = float(msg.sample_rate_hz)
        self.sample_rate_hz = msg.sample_rate_hz
        self.channel_mask = msg.channel_mask
        self.gain = msg.gain
        return self._ack(t, seq)

    # ------------------------------------------------------------ stimulation

    def _on_time_last_minute(self, electrode: int | None = None) -> float:
        """Seconds ``electrode`` was on in the last 60 s (None: the busiest)."""
        horizon = self.sample - 60 * self.sample_rate_hz
        while self.on_time and self.on_time[0][0] < horizon:
            self.on_time.popleft()
        per: dict[int, float] = {}
        for _, seconds, electrodes in self.on_time:
            for e in electrodes:
                per[e] = per.get(e, 0.0) + seconds
        if electrode is None:
            return max(per.values(), default=0.0)
        return per.get(electrode, 0.0)

    def _stimulate(self, seq: int, msg) -> OutFrame:
        t = MsgType.STIMULATE
        lim = self.limits
        if self.fault != FaultCode.NONE:
            return self._nak(t, seq, NakCode.FAULT_LATCHED, text=self.fault.name)
        if not self.armed:
            return self._nak(t, seq, NakCode.NOT_ARMED)
        if self.stimulating:
            return self._nak(t, seq, NakCode.BUSY)
        checks = (
            (
                Field.AMPLITUDE_MVPP,
                msg.amplitude_mvpp,
                1,
                round(lim.max_amplitude_vpp * 1000),
            ),
            (
                Field.DURATION_US,
                msg.duration_us,
                round(lim.min_duration_s * 1e6),
                round(lim.max_duration_s * 1e6),
            ),
            (Field.CATHODE, msg.cathode, 0, self.n_stim_electrodes - 1),
            (Field.POLARITY, msg.polarity, 0, 1),
            (Field.N_PULSES, msg.n_pulses, 1, lim.max_pulses),
        )
        refused = self._out_of_range(t, seq, checks)
        if refused is not None:
            return refused
        refused = self._check_anode(seq, msg)
        if refused is not None:
            return refused
        if msg.n_pulses > 1:  # a single pulse ignores train_period_us
            min_period = max(round(1e6 / lim.max_train_rate_hz), msg.duration_us + 1)
            refused = self._out_of_range(
                t,
                seq,
                [
                    (
                        Field.TRAIN_PERIOD_US,
                        msg.train_period_us,
                        min_period,
                        MAX_TRAIN_PERIOD_US,
                    )
                ],
            )
            if refused is not None:
                return refused
        vpp = msg.amplitude_mvpp / 1000
        duration = msg.duration_us * 1e-6
        electrodes = _electrodes(msg)
        # Per electrode: the whole phase's charge passes through each one used.
        charge_nc = (vpp / 2) / lim.load_ohm * duration / math.pi * 1e9
        max_nc = lim.max_charge_per_phase_c * 1e9
        if charge_nc > max_nc:
            return self._nak(
                t,
                seq,
                NakCode.CHARGE_LIMIT,
                Field.CHARGE_PER_PHASE_NC,
                round(charge_nc),
                0,
                round(max_nc),
                f"electrode {msg.cathode}",
            )
        for electrode in electrodes:  # on-time per electrode, any 60 s
            requested_s = (
                self._on_time_last_minute(electrode) + duration * msg.n_pulses
            )
            if requested_s > lim.max_on_time_s_per_min:
                return self._nak(
                    t,
                    seq,
                    NakCode.ON_TIME_LIMIT,
                    Field.ON_TIME_MS_PER_MIN,
                    round(requested_s * 1000),
                    0,
                    round(lim.max_on_time_s_per_min * 1000),
                    f"electrode {electrode}",
                )
        onset = self.sample + 1
        period = round(msg.train_period_us * 1e-6 * self.sample_rate_hz)
        for k in range(msg.n_pulses):
            self.pulses.append((onset + k * period, seq, k))
        self.current_stim = {"msg": msg, "seq": seq}
        return self._ack(t, seq, onset)

    def _check_anode(self, seq: int, msg) -> OutFrame | None:
        """The anode: an electrode other than the cathode, or 255 (the common
        return)."""
        t = MsgType.STIMULATE
        if msg.anode == COMMON_RETURN_ANODE:
            return None
        top = self.n_stim_electrodes - 1
        if not 0 <= msg.anode <= top:
            return self._nak(
                t, seq, NakCode.OUT_OF_RANGE, Field.ANODE, msg.anode, 0, top,
                "or 255 = the common return",
            )  # fmt: skip
        if msg.anode == msg.cathode:
            return self._nak(
                t, seq, NakCode.BAD_CONFIGURATION, Field.ANODE, msg.anode, 0, top,
                "the anode is the cathode",
            )  # fmt: skip
        return None

    def _stop_stimulation(self) -> None:
        """DISARM, host loss: drop the pulses not yet started; the one being
        delivered runs to its end.

        A pulse is one full sine cycle, and only its start and its end are
        charge-neutral: stopping at its middle zero crossing would leave one
        phase's charge (up to max_charge_per_phase) on the electrodes. Finishing
        it takes at most one pulse duration (max_duration_us, 10 ms).
        """
        self.pulses.clear()

    # ------------------------------------------------------------ time

    def advance(self, n: int) -> list[OutFrame]:
        """Move the sample clock on by ``n`` samples; return the frames to send."""
        out: list[OutFrame] = []
        target = self.sample + n
        try:
            self._advance_to(target, out)
        except Exception as exc:  # a firmware bug: fault, stop, keep the clock
            self.sample = max(self.sample, target)
            self.streaming = False  # do not fail again on every tick
            text = f"{type(exc).__name__}: {exc}"[:200]
            out.extend(self._firmware_fault(f"sample clock step failed: {text}"))
        return out

    def _advance_to(self, target: int, out: list[OutFrame]) -> None:
        while self.sample < target:
            # Step to the next event boundary so events land on exact samples.
            step_end = target
            if self.pulses:
                step_end = min(step_end, max(self.pulses[0][0], self.sample + 1))
            if self.camera_period:
                step_end = min(step_end, max(self.camera_next, self.sample + 1))
            out.extend(self._events_at(self.sample))
            self.sample = step_end
            self._watchdog(out)
            if self.streaming:
                out.extend(self._flush_data(self.sample, partial=False))

    def _events_at(self, sample: int) -> list[OutFrame]:
        out: list[OutFrame] = []
        if self.current_pulse is not None and sample >= self.current_pulse[1]:
            self.current_pulse = None
        while (
            self.pulses and self.pulses[0][0] <= sample and self.current_pulse is None
        ):
            onset, seq, index = self.pulses.popleft()
            assert self.current_stim is not None  # set when the pulses were queued
            msg = self.current_stim["msg"]
            vpp = msg.amplitude_mvpp / 1000
            duration = msg.duration_us * 1e-6
            out_vpp = delivered_vpp(vpp)
            self.model.stimulate(
                onset, out_vpp, duration, msg.polarity,
                cathode=msg.cathode, anode=si_anode(msg.anode),
            )  # fmt: skip
            end = onset + round(duration * self.sample_rate_hz)
            self.current_pulse = (onset, end)
            self.on_time.append((onset, duration, _electrodes(msg)))
            out.append(
                self._frame(
                    StimDelivered(
                        onset & 0xFFFFFFFF,
                        seq,
                        index,
                        msg.amplitude_mvpp,
                        round(out_vpp * 1000),
                        msg.duration_us,
                        msg.cathode,
                        msg.anode,
                        msg.polarity,
                    )
                )
            )
        if self.camera_period and sample >= self.camera_next:
            out.append(
                self._frame(CameraTriggered(sample & 0xFFFFFFFF, self.camera_count))
            )
            self.on_camera_trigger(sample, self.camera_count)
            self.camera_count += 1
            self.camera_next += self.camera_period
        return out

    def note_host_alive(self, sample: int) -> None:
        """Host bytes that waited while the simulator itself was not running
        arrived by ``sample``: the watchdog measures the host's silence, not the
        simulator's own starvation (it read them at its stale clock, then
        caught up in one step)."""
        self.last_host_sample = max(self.last_host_sample, sample)

    def fault_frame(self, code: FaultCode, text: str) -> OutFrame:
        """A FAULT frame stamped now (used by the transport for TX overflow)."""
        return self._frame(Fault(self.sample & 0xFFFFFFFF, int(code), text))

    def _watchdog(self, out: list[OutFrame]) -> None:
        if not self.armed:
            return
        silent = self.sample - self.last_host_sample
        if silent > HEARTBEAT_TIMEOUT_S * self.sample_rate_hz:
            self._stop_stimulation()
            self.armed = False
            self.fault = FaultCode.HOST_LOSS
            out.append(
                self._frame(
                    Fault(
                        self.sample & 0xFFFFFFFF,
                        int(FaultCode.HOST_LOSS),
                        "no host frame for 300 ms: stimulation stopped",
                    )
                )
            )

    def _flush_data(self, upto: int, partial: bool = True) -> list[OutFrame]:
        """DATA frames for samples [stream_next, upto): blocks of ≤ 10 ms."""
        if not self.streaming:
            return []
        out = []
        n_ch = self.n_channels
        max_block = min(int(MAX_BLOCK_S * self.sample_rate_hz), 4000 // (2 * n_ch))
        while self.stream_next < upto:
            n = min(max_block, upto - self.stream_next)
            if n < max_block and not partial:
                break
            first = self.stream_next
            volts = self.model.render(first, n)
            channels = [i for i in range(32) if self.channel_mask >> i & 1]
            volts = volts[:, channels]
            if self.test_signal is not None:
                mask, vpp, hz = self.test_signal
                tt = np.arange(first, first + n) / self.sample_rate_hz
                wave = vpp / 2 * np.sin(2 * np.pi * hz * tt)
                sel = [j for j, c in enumerate(channels) if mask >> c & 1]
                volts[:, sel] += wave[:, None]
            counts = to_adc_counts(
                volts,
                self.gain * AMPLIFIER_GAIN_ERROR,
                self.limits.adc_bits,
                self.limits.adc_range_vpp,
            )
            out.append(self._frame(Data(first & 0xFFFFFFFF, counts), "data", first, n))
            self.stream_next += n
            self.sent_samples += n
        return out


def crc_of(data: bytes) -> int:
    """CRC-32 as the board computes it (zlib)."""
    return zlib.crc32(data)
