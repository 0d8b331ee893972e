"""Interlocks: no stimulus unless armed; DISARM stops a train between pulses;
a silent host makes the board stop, disarm and latch HOST_LOSS until
RESET_FAULT; STATUS says all of it."""

from __future__ import annotations

import time

import pytest

from firmware_bridge import StimPulse
from firmware_bridge.errors import CommandRefused
from firmware_bridge.protocol import Fault, FaultCode, StatusFlag, StimDelivered
from tests.behaviour._board import Collector, configure, open_board, wait_for

ARMED, STIMULATING = StatusFlag.ARMED, StatusFlag.STIMULATING
LATCHED = StatusFlag.FAULT_LATCHED


def test_arm_and_disarm_gate_stimulation_and_show_in_status(board_port):
    with open_board(board_port) as device:
        seen = Collector(device)
        configure(device)
        train = StimPulse(3.0, 3e-3, n_pulses=20, rate_hz=20.0)  # 1 s long
        with pytest.raises(CommandRefused) as refused:
            device.stimulate(train)
        assert refused.value.error == "NOT_ARMED"
        assert not device.status().flags & ARMED
        device.arm()
        assert device.status().flags & ARMED
        device.stimulate(train)
        assert wait_for(lambda: len(seen.messages(StimDelivered)) >= 2, 1.0)
        assert device.status().flags & STIMULATING
        device.disarm()
        disarmed_at = device.status().sample_index
        time.sleep(0.2)  # four train periods: the pulses that would have come
        status = device.status()
        onsets = [m.sample_index for m in seen.messages(StimDelivered)]
    # No pulse starts after DISARM; the one running (if any) has finished.
    assert 2 <= len(onsets) < 20 and max(onsets) <= disarmed_at
    assert not status.flags & (ARMED | STIMULATING)
    assert status.fault == FaultCode.NONE


def test_heartbeat_loss_stops_stimulation_and_latches_until_reset(board_port):
    with open_board(board_port, heartbeat=False) as device:
        seen = Collector(device)
        rate = configure(device)
        device.arm()
        onset = device.stimulate(StimPulse(3.0, 3e-3, n_pulses=100, rate_hz=20.0))
        # The STIMULATE is the last host frame: the board must give up 300 ms
        # of device time later.
        assert wait_for(lambda: seen.messages(Fault), timeout_s=3.0)
        time.sleep(0.1)
        [fault] = seen.messages(Fault)
        onsets = [m.sample_index for m in seen.messages(StimDelivered)]
        status = device.status()
        with pytest.raises(CommandRefused) as refused:
            device.arm()
        device.reset_fault()
        cleared = device.status()
        device.arm()
        rearmed = device.status()
    assert fault.code == FaultCode.HOST_LOSS
    # 300 ms from the last host frame (received the sample before the onset),
    # give or take the board's 10 ms of reaction.
    assert 0.3 * rate - 1 <= fault.sample_index - onset <= 0.31 * rate
    assert max(onsets) <= fault.sample_index  # the train stopped there
    assert 6 <= len(onsets) <= 7  # 20 Hz for 0.3 s, not 100 pulses
    assert status.flags & LATCHED and not status.flags & (ARMED | STIMULATING)
    assert status.fault == FaultCode.HOST_LOSS
    assert refused.value.error == "FAULT_LATCHED"
    assert cleared.fault == FaultCode.NONE
    assert not cleared.flags & (LATCHED | ARMED)  # cleared, and still disarmed
    assert rearmed.flags & ARMED
