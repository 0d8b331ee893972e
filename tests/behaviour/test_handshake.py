"""Handshake and capabilities: the board says what it is, in SI units; one
session per board."""

from __future__ import annotations

import pytest

from firmware_bridge.device import Device
from firmware_bridge.protocol import PROTOCOL_VERSION, FaultCode, StatusFlag
from firmware_bridge.transport import PortInUseError, open_port
from tests.behaviour._board import open_board


def test_handshake_reports_the_protocol_version_and_limits_in_si(board_port):
    with open_board(board_port) as device:
        info = device.info
        assert info.protocol_version == PROTOCOL_VERSION
        assert info.firmware_version.count(".") == 2 and info.board_id
        # SI, not wire units: a V read as mV, or s as µs, is off by 10**3.
        assert 0.5 <= info.max_amplitude_vpp <= 50
        assert 1e-5 <= info.min_duration_s < info.max_duration_s <= 0.1
        assert 1 <= info.max_train_rate_hz <= 10_000
        assert 1e-7 <= info.max_charge_per_phase_c <= 1e-3
        assert 0.01 <= info.max_on_time_s_per_min <= 60
        assert 10 <= info.load_ohm <= 1e6
        assert 0.1 <= info.adc_range_vpp <= 50 and 8 <= info.adc_bits <= 32
        assert info.max_channels >= 1 and info.n_stim_electrodes >= 1
        assert info.max_gain >= 1
        assert info.sample_rates_hz and all(r > 0 for r in info.sample_rates_hz)
        assert info.volts_per_count(1) == pytest.approx(
            info.adc_range_vpp / 2**info.adc_bits
        )
        # The handshake is repeatable and the board is idle after it.
        assert device.connect() == info
        status = device.status()
        assert status.flags & (StatusFlag.ARMED | StatusFlag.STREAMING) == 0
        assert status.fault == FaultCode.NONE
        assert status.sample_rate_hz in info.sample_rates_hz


def test_a_second_open_of_the_same_port_is_refused_and_the_first_keeps_working(
    board_port,
):
    first = Device.open(board_port, heartbeat=False)
    try:
        with pytest.raises(PortInUseError) as info:
            Device.open(board_port, heartbeat=False)
        message = str(info.value)
        assert board_port in message and "already in use" in message
        assert first.connect(timeout_s=1.0).protocol_version  # link intact
    finally:
        first.close()
    open_port(board_port).close()  # free again once the first session closed
