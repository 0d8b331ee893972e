"""Helpers of the behaviour suite: what any board can be asked, by its port alone."""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.device import Device

SAMPLE_RATE_HZ = 30_000  # the rig's rate; a board without it runs at its fastest
CHANNELS = 4
GAIN = 1000


def open_board(port: str, *, heartbeat: bool = True) -> Device:
    """``Device.open(port)``, as a user opens a board."""
    return Device.open(port, timeout_s=2.0, heartbeat=heartbeat)


def configure(device: Device) -> int:
    """Configure the rig's usual stream (what the board allows of it); the rate."""
    info = device.info
    rates = info.sample_rates_hz
    rate = SAMPLE_RATE_HZ if SAMPLE_RATE_HZ in rates else max(rates)
    device.configure(
        sample_rate_hz=rate,
        channels=min(CHANNELS, info.max_channels),
        gain=min(GAIN, info.max_gain),
    )
    return rate


class Collector:
    """Every decoded batch the device delivers (on its reader thread)."""

    def __init__(self, device: Device) -> None:
        self.batches: list = []
        device.add_listener(self.batches.append)

    def messages(self, kind: type) -> list:
        return [
            m for b in list(self.batches) for m in b.messages if isinstance(m, kind)
        ]

    def runs(self) -> list[tuple[int, int]]:
        """``(first sample number, n)`` of every run of samples received."""
        return [
            (first, len(block))
            for b in list(self.batches)
            for first, block in b.sample_blocks()
        ]

    def gaps(self) -> np.ndarray:
        rows = [b.gaps for b in list(self.batches) if len(b.gaps)]
        return np.concatenate(rows) if rows else np.empty((0, 2), np.int64)


def wait_for(predicate, timeout_s: float = 3.0) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
