"""Acquisition over the simulated rig's pseudo-terminal: the relay's drain."""

from __future__ import annotations

import threading

from firmware_bridge.device import Device
from firmware_bridge.sim import SimulatedRig
from rig.core.acquisition import Acquisition


def test_drain_waits_for_the_batch_the_consumers_are_still_in():
    # stop_recording drains, then closes the writer: a batch the relay has taken
    # off the queue but not yet written must count, or its samples land after
    # the recording's metadata was finalised.
    simulator = SimulatedRig(seed=2)
    device = Device.open(simulator.port, heartbeat=False)
    acquisition = Acquisition(device, 4)
    release, entered = threading.Event(), threading.Event()

    def slow_consumer(decoded, host_time):
        entered.set()
        release.wait(5.0)

    acquisition.add_consumer(slow_consumer)
    try:
        device.status()  # one reply: one batch for the relay
        assert entered.wait(5.0)  # taken off the queue, still being consumed
        assert acquisition.drain(timeout_s=0.2) is False
        release.set()
        assert acquisition.drain(timeout_s=5.0) is True
    finally:
        release.set()
        acquisition.close()
        device.close()
        simulator.close()
