"""Stimulation: what was commanded is delivered and reported at its onset
sample; what is out of range is refused by the board itself, naming the field.

``Device`` checks nothing on the host (the session's rig limits do, and are
bypassed here), so every refusal below is the board's own.
"""

from __future__ import annotations

import math
import time
from functools import partial

import pytest

from firmware_bridge import Polarity, StimPulse
from firmware_bridge.device import Device
from firmware_bridge.errors import CommandRefused
from firmware_bridge.protocol import FaultCode, StatusFlag, StimDelivered
from tests.behaviour._board import Collector, configure, open_board, wait_for


def test_a_pulse_is_delivered_as_commanded_at_the_onset_sample(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        configure(device)
        device.arm()
        pulse = StimPulse(3.0, 3e-3, polarity=Polarity.NEGATIVE_FIRST)
        onset = device.stimulate(pulse)
        assert wait_for(lambda: seen.messages(StimDelivered), 1.0)
        time.sleep(0.05)  # nothing more is coming
        [delivered] = seen.messages(StimDelivered)
    assert delivered.sample_index == onset
    assert delivered.pulse_index == 0
    assert delivered.commanded_mvpp == 3000 and delivered.duration_us == 3000
    assert (delivered.cathode, delivered.anode, delivered.polarity) == (
        0,
        1,
        Polarity.NEGATIVE_FIRST,
    )  # the classic pair, C0-A1
    # The stimulus monitor's measurement: an output stage is not exact, but a
    # pulse measured at a tenth or ten times its command was not delivered.
    assert 0.5 * 3000 < delivered.delivered_mvpp < 1.5 * 3000


def test_a_train_is_delivered_pulse_by_pulse_exactly_one_period_apart(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        rate = configure(device)
        device.arm()
        onset = device.stimulate(StimPulse(3.0, 2e-3, n_pulses=4, rate_hz=50.0))
        assert wait_for(lambda: len(seen.messages(StimDelivered)) >= 4, 1.0)
        time.sleep(0.05)
        delivered = seen.messages(StimDelivered)
    period = round(20_000 * rate / 1e6)  # 20 ms on the device clock
    assert [m.pulse_index for m in delivered] == [0, 1, 2, 3]
    assert [m.sample_index for m in delivered] == [onset + k * period for k in range(4)]
    assert all(m.duration_us == 2000 and m.commanded_mvpp == 3000 for m in delivered)


def _us(seconds):
    return round(seconds * 1e6)


def _stimulate(pulse):
    return partial(Device.stimulate, pulse=pulse)


# Each case, given the board's limits (BoardInfo): the command to send to a
# Device, and the NAK expected: field, refused value, allowed min and max (wire
# units, as docs/protocol.md §4 and §5 give them).
def over_amplitude(info):
    vpp = info.max_amplitude_vpp + 1.0
    top = round(info.max_amplitude_vpp * 1e3)
    expected = ("AMPLITUDE_MVPP", round(vpp * 1e3), 1, top)
    return _stimulate(StimPulse(vpp, info.max_duration_s)), expected


def over_duration(info):
    seconds = info.max_duration_s * 2
    limits = _us(info.min_duration_s), _us(info.max_duration_s)
    return _stimulate(StimPulse(1.0, seconds)), ("DURATION_US", _us(seconds), *limits)


def under_duration(info):
    seconds = info.min_duration_s / 2
    limits = _us(info.min_duration_s), _us(info.max_duration_s)
    return _stimulate(StimPulse(1.0, seconds)), ("DURATION_US", _us(seconds), *limits)


def missing_cathode(info):
    n = info.n_stim_electrodes
    pulse = StimPulse(1.0, info.min_duration_s, cathode=n, anode=None)
    return _stimulate(pulse), ("CATHODE", n, 0, n - 1)


def missing_anode(info):
    n = info.n_stim_electrodes
    pulse = StimPulse(1.0, info.min_duration_s, cathode=0, anode=n)
    return _stimulate(pulse), ("ANODE", n, 0, n - 1)


def train_too_fast(info):
    rate_hz = info.max_train_rate_hz * 2
    pulse = StimPulse(1.0, info.min_duration_s, n_pulses=3, rate_hz=rate_hz)
    # §5: 1e9 / train_period_us <= max_train_rate_mhz, and period > duration
    min_period_us = max(
        math.ceil(round(1e6 / info.max_train_rate_hz, 6)), _us(pulse.duration_s) + 1
    )
    expected = ("TRAIN_PERIOD_US", _us(1 / rate_hz), min_period_us, 10**7)
    return _stimulate(pulse), expected


def rate_not_offered(info):
    rates = info.sample_rates_hz
    rate = max(rates) + 1
    send = partial(Device.configure, sample_rate_hz=rate, channels=1, gain=1)
    return send, ("SAMPLE_RATE_HZ", rate, min(rates), max(rates))


def over_gain(info):
    gain, rate = info.max_gain + 1, info.sample_rates_hz[0]
    send = partial(Device.configure, sample_rate_hz=rate, channels=1, gain=gain)
    return send, ("GAIN", gain, 1, info.max_gain)


def camera_too_fast(info):
    send = partial(Device.set_camera_trigger, rate_hz=2000.0)  # 500 µs < 1 ms
    return send, ("CAMERA_PERIOD_US", 500, 1000, 10_000_000)


def led_too_long(info):
    send = partial(Device.led_pulse, duration_s=2.0)
    return send, ("LED_DURATION_US", 2_000_000, 1, 1_000_000)


def signal_at_0_hz(info):
    send = partial(
        Device.test_signal, enable=True, channels=(0,), amplitude_vpp=1e-3,
        frequency_hz=0,
    )  # fmt: skip
    return send, ("TEST_FREQUENCY_HZ", 0, 1, 5000)


REFUSED = [
    over_amplitude,
    over_duration,
    under_duration,
    missing_cathode,
    missing_anode,
    train_too_fast,
    rate_not_offered,
    over_gain,
    camera_too_fast,
    led_too_long,
    signal_at_0_hz,
]


@pytest.mark.parametrize("case", REFUSED, ids=[f.__name__ for f in REFUSED])
def test_the_board_refuses_out_of_range_commands_naming_the_field(board_port, case):
    with open_board(board_port) as device:
        seen = Collector(device)
        configure(device)
        device.arm()
        send, expected = case(device.info)
        with pytest.raises(CommandRefused) as refused:
            send(device)
        time.sleep(0.05)  # a pulse would start on the next sample: it would show
        status = device.status()
        stimuli = seen.messages(StimDelivered)
    nak = refused.value.nak
    assert refused.value.error == "OUT_OF_RANGE"
    assert (
        refused.value.field,
        nak.value,
        nak.allowed_min,
        nak.allowed_max,
    ) == expected
    assert stimuli == []
    # Refused, and nothing else changed: still armed, no fault.
    assert status.flags & StatusFlag.ARMED and status.fault == FaultCode.NONE
