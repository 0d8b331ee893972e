"""One session per board: a second open of the same serial port is refused with a
clear message, and the first session's link keeps working."""

from __future__ import annotations

import pytest

from firmware_bridge.device import Device
from firmware_bridge.sim import SimulatedRig
from firmware_bridge.transport import PortInUseError, open_port
from rig.core.connect import open_rig


def test_a_second_open_of_the_same_port_is_refused_and_the_first_keeps_working():
    rig = SimulatedRig(seed=3, keep_ground_truth=False)
    try:
        first = Device.open(rig.port, heartbeat=False)
        try:
            with pytest.raises(PortInUseError) as info:
                Device.open(rig.port, heartbeat=False)
            message = str(info.value)
            assert rig.port in message and "already in use" in message
            assert first.connect(timeout_s=1.0).protocol_version  # link intact
        finally:
            first.close()
        open_port(rig.port).close()  # free again once the first session closed
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://?channels=0", "channels=0: allowed 1–32"),
        ("sim://?rate=7", "rate=7: allowed 10000, 20000, 30000, 40000 Hz"),
        ("sim://?seed=x", "seed='x' is not a whole number"),
    ],
)
def test_sim_url_options_are_checked(url, message):
    with pytest.raises(ValueError, match=message):
        open_rig(url)
