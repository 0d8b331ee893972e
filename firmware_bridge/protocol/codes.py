"""Numeric codes carried on the wire: message types, NAK errors, fields, faults.

The numbers are part of protocol version ``PROTOCOL_VERSION``; never renumber a
member, only add. docs/protocol.md lists the same tables for firmware authors.
"""

from __future__ import annotations

from enum import IntEnum

# 2: NAK value/allowed_min/allowed_max are u32 (were i32).
# 3: N stimulation electrodes: STIMULATE and STIM_DELIVERED carry the
#    configuration (cathode, anode; anode 255 = the common return) instead of a
#    pair index; HELLO_REPLY's n_stim_pairs is n_stim_electrodes; the charge and
#    on-time limits hold per electrode.
PROTOCOL_VERSION = 3


class MsgType(IntEnum):
    """Frame type byte. Host→device commands are 0x01–0x3F, device→host 0x80–0xBF."""

    # host -> device
    HELLO = 0x01  # handshake; payload: host protocol version
    GET_STATUS = 0x02  # ask for a STATUS reply
    CONFIGURE = 0x03  # sample rate, enabled channels, amplifier gain
    START_STREAM = 0x04  # begin sending DATA frames
    STOP_STREAM = 0x05  # flush the partial block, then ACK with the next sample index
    HEARTBEAT = 0x06  # keeps the host-loss watchdog fed (send every 100 ms)
    ARM = 0x07  # allow stimulation
    DISARM = 0x08  # finish the pulse being delivered (charge-balanced), drop the rest
    RESET_FAULT = 0x09  # clear a latched fault
    STIMULATE = 0x0A  # one bipolar sinusoidal pulse or a train
    TEST_SIGNAL = 0x0B  # inject a known sine at the amplifier inputs (gain calibration)
    LED_PULSE = 0x0C  # flash the timing LED seen by the camera (timing calibration)
    CAMERA_TRIGGER = 0x0D  # set the camera trigger period (0 = off)
    # device -> host
    ACK = 0x80  # command accepted; payload stamps it with the device sample index
    NAK = 0x81  # command refused; payload names the error, field and allowed range
    HELLO_REPLY = 0x82  # protocol and firmware version, board capabilities
    STATUS = 0x83  # state flags, fault, sample index, configuration
    DATA = 0x90  # block of int16 samples, first sample index, channel count
    STIM_DELIVERED = 0x91  # a pulse started; delivered parameters
    CAMERA_TRIGGERED = 0x92  # a camera trigger pulse went out
    FAULT = 0x93  # a fault latched (or a warning); code and text
    LED_FLASHED = 0x94  # the timing LED switched on
    BOOT = 0x95  # the board (re)started: sample counter restarts at 0
    LOG = 0x96  # human-readable firmware message


HOST_TO_DEVICE = frozenset(t for t in MsgType if t < 0x80)
DEVICE_TO_HOST = frozenset(t for t in MsgType if t >= 0x80)


class NakCode(IntEnum):
    """Why the board refused a command (NAK ``error`` byte)."""

    UNKNOWN_COMMAND = 1  # type byte not in the catalogue
    BAD_LENGTH = 2  # payload length wrong for the type
    OUT_OF_RANGE = 3  # a field outside the allowed range (field, min, max given)
    NOT_ARMED = 4  # STIMULATE while disarmed
    FAULT_LATCHED = 5  # a fault is latched; send RESET_FAULT first
    BUSY = 6  # a pulse or train is still running
    VERSION_MISMATCH = 7  # HELLO with a protocol version the board does not speak
    CHARGE_LIMIT = 8  # charge per phase would exceed the board's limit
    ON_TIME_LIMIT = 9  # stimulation on-time in the last 60 s would exceed the limit
    INVALID_STATE = 10  # e.g. CONFIGURE while streaming
    INTERNAL_ERROR = 11  # the firmware failed executing the command (FAULT follows)
    BAD_CONFIGURATION = 12  # the anode is the cathode (field ANODE)


class Field(IntEnum):
    """Which field a NAK refers to (NAK ``field`` byte)."""

    NONE = 0
    AMPLITUDE_MVPP = 1
    DURATION_US = 2
    CATHODE = 3  # was PAIR (protocol version 2)
    POLARITY = 4
    N_PULSES = 5
    TRAIN_PERIOD_US = 6
    SAMPLE_RATE_HZ = 7
    CHANNEL_MASK = 8
    GAIN = 9
    CHARGE_PER_PHASE_NC = 10
    ON_TIME_MS_PER_MIN = 11
    PROTOCOL_VERSION = 12
    TEST_FREQUENCY_HZ = 13
    TEST_AMPLITUDE_UVPP = 14
    CAMERA_PERIOD_US = 15
    LED_DURATION_US = 16
    TEST_ENABLE = 17
    ANODE = 18


class FaultCode(IntEnum):
    """Faults the board reports (FAULT ``code`` byte and STATUS ``fault``)."""

    NONE = 0
    HOST_LOSS = 1  # no host frame for 300 ms while armed: stimulation stopped
    OVERCURRENT = 2  # stimulator current limit tripped
    ADC_OVERRUN = 3  # samples dropped on the board (a gap in sample indices)
    BROWNOUT = 4  # supply dipped; board reset
    WATCHDOG_RESET = 5  # firmware watchdog reset the board
    TX_OVERFLOW = 6  # USB transmit buffer full: frames dropped on the board
    FIRMWARE_ERROR = 7  # the firmware hit an unexpected error: disarmed, latched

    @property
    def latches(self) -> bool:
        """True when the fault disarms the board until RESET_FAULT."""
        return self in (
            FaultCode.HOST_LOSS,
            FaultCode.OVERCURRENT,
            FaultCode.FIRMWARE_ERROR,
        )


class StatusFlag(IntEnum):
    """Bits of the STATUS ``flags`` byte."""

    ARMED = 0x01
    STREAMING = 0x02
    STIMULATING = 0x04
    FAULT_LATCHED = 0x08
    TEST_SIGNAL = 0x10
