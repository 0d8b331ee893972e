"""Sessions on a SimulatedRig the test made itself (to reach its faults, camera
and ground truth), opened by its port exactly as a board's would be."""

from __future__ import annotations

from typing import Any

from firmware_bridge.device import Device
from rig.core.connect import simulated_rig_description
from rig.core.session import Session
from rig.rig_file import DEFAULT_CHANNELS, RigDescription


def session_on(
    simulator: Any,
    *,
    rig: RigDescription | None = None,
    channels: int = DEFAULT_CHANNELS,
    heartbeat: bool = True,
    **kwargs: Any,
) -> Session:
    """A Session on ``simulator``'s pty with its geometry; closing the session
    closes the simulator."""
    device = Device.open(simulator.port, timeout_s=2.0, heartbeat=heartbeat)
    description = simulated_rig_description(channels, rig, simulator=simulator)
    return Session(
        device,
        rig=description,
        channels=channels,
        resources=[simulator.close],
        **kwargs,
    )
