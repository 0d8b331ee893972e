"""How many channels the simulated board sustains at 30 kS/s in real time.

For each channel count the rig streams for a few seconds over its pseudo-terminal
to a host that drains and decodes the port; the count is sustained when the board's
clock never lags wall time by more than 50 ms and no sample is lost. Figure:
``sim_max_channels_realtime`` (largest sustained count, up to 32).
"""

from __future__ import annotations

import time

from firmware_bridge.device import Device
from firmware_bridge.link import SerialLink
from firmware_bridge.sim import SimulatedRig
from firmware_bridge.transport import open_port


def sustains(n_channels: int, seconds: float) -> tuple[bool, float]:
    """(sustained?, worst lag in s) for one channel count."""
    with SimulatedRig(seed=1, n_channels=n_channels) as rig:
        link = SerialLink(open_port(rig.port))
        device = Device(link)
        link.start()
        device.connect(timeout_s=2.0)
        device.start_heartbeat()
        try:
            device.configure(sample_rate_hz=30_000, channels=n_channels, gain=1000)
            first = device.start_stream()
            rig.max_lag_s = 0.0
            started = time.monotonic()
            time.sleep(seconds)
            end = device.stop_stream()
            elapsed = time.monotonic() - started
            lost = device.counters.samples_lost
        finally:
            device.close()
        behind = elapsed * 30_000 - (end - first)
        lag = max(rig.max_lag_s, behind / 30_000)
        return lost == 0 and lag < 0.05, lag


def run(quick: bool = False) -> dict[str, float]:
    """Walk up the channel counts until the emulator falls behind."""
    seconds = 1.5 if quick else 4.0
    best = 0
    figures: dict[str, float] = {}
    for n in (4, 8, 16, 24, 32):
        ok, lag = sustains(n, seconds)
        figures[f"sim_lag_ms_{n}ch"] = lag * 1000
        if not ok:
            break
        best = n
    figures["sim_max_channels_realtime"] = best
    return figures
