"""The host's heartbeat does not need Python's GIL, yet still says the host is
alive: a board in its own process (``neurorig sim``), armed, stays armed while
this process's interpreter is held for longer than the board's 300 ms watchdog,
and latches HOST_LOSS once the host's serial reader has stopped for longer
than the heartbeat waits for it (firmware_bridge._heartbeat)."""

from __future__ import annotations

import threading
import time

import pytest

from firmware_bridge._heartbeat import MAX_STALL_S, NogilHeartbeat
from firmware_bridge.device import Device
from firmware_bridge.protocol import FaultCode, StatusFlag
from rig.core.connect import SimulatorProcess

pytestmark = pytest.mark.skipif(
    not NogilHeartbeat.available(), reason="the GIL-free heartbeat needs 64-bit Linux"
)
WATCHDOG_S = 0.3


def hold_the_gil(seconds: float) -> float:
    """Keep the GIL for about ``seconds`` in one C call (sum over a range runs
    no bytecode, so no other thread of this process runs); the time it took."""
    n = 1_000_000
    t0 = time.perf_counter()
    sum(range(n))
    rate = n / max(time.perf_counter() - t0, 1e-6)
    t0 = time.perf_counter()
    sum(range(int(rate * seconds)))
    return time.perf_counter() - t0


@pytest.fixture
def armed_board():
    with SimulatorProcess({"seed": "2"}) as child:
        device = Device.open(child.port, timeout_s=2.0)
        try:
            device.arm()
            time.sleep(0.2)
            yield device
        finally:
            device.close()


def test_the_board_stays_armed_while_the_interpreter_is_held(armed_board):
    # A hold long enough that a heartbeat needing the GIL would miss the
    # watchdog, short enough that the reader's pulse is still fresh (a longer
    # one on a loaded machine proves nothing here: skip).
    for _ in range(5):
        held = hold_the_gil(0.55)
        if held > 0.8 * MAX_STALL_S:
            pytest.skip(f"the machine stretched a 0.55 s hold to {held:.2f} s")
        if held >= WATCHDOG_S + 0.1:
            break
    else:
        pytest.skip(f"could not hold the GIL for 0.4 s here (last {held:.2f} s)")
    status = armed_board.status()
    assert status.fault == FaultCode.NONE
    assert status.flags & StatusFlag.ARMED
    heartbeat = armed_board.heartbeat_stats
    assert heartbeat.max_gap_s < WATCHDOG_S  # it wrote while nothing else here ran
    assert heartbeat.withheld == 0


def test_a_host_whose_reader_has_stopped_is_a_lost_host(armed_board):
    for _ in range(3):  # a hold too short to matter leaves the board armed
        held = hold_the_gil(MAX_STALL_S + 3 * WATCHDOG_S)
        if held > MAX_STALL_S + WATCHDOG_S + 0.1:
            break
    assert held > MAX_STALL_S + WATCHDOG_S + 0.1
    status = armed_board.status()
    assert status.fault == FaultCode.HOST_LOSS
    assert not status.flags & StatusFlag.ARMED
    assert armed_board.heartbeat_stats.withheld > 0  # it stopped saying "alive"


def test_closing_the_link_stops_the_heartbeat_first():
    with SimulatorProcess({"seed": "3"}) as child:
        device = Device.open(child.port, timeout_s=2.0)
        assert any(t.name == "heartbeat" for t in threading.enumerate())
        device.close()
        assert not any(t.name == "heartbeat" for t in threading.enumerate())
