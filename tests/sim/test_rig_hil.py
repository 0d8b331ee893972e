"""Hardware-in-loop: the simulated rig through a real pseudo-terminal, via pyserial.

Simulator-only: these tests read the simulator's ground truth, give it other
limits or inject faults. What any board does, by its port alone, is in
tests/behaviour (run on the simulated rig, and on a board with ``--port``).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from firmware_bridge import StimPulse
from firmware_bridge.device import Device
from firmware_bridge.errors import CommandRefused, DeviceDisconnected, DeviceTimeout
from firmware_bridge.link import SerialLink
from firmware_bridge.protocol import Boot, StimDelivered
from firmware_bridge.sim import BoardLimits, FaultPlan, SimulatedRig, WormParams
from firmware_bridge.transport import open_port

QUIET = WormParams(noise_uv_rms=0.0, hum_uv=0.0, drift_uv=0.0, artifact_coupling=0.0)


class Collector:
    """Keeps every decoded batch the device delivers."""

    def __init__(self, device):
        self.batches = []
        device.add_listener(self.batches.append)

    def messages(self, kind):
        return [m for b in self.batches for m in b.messages if isinstance(m, kind)]

    def samples(self, n_channels):
        rows, firsts = [], []
        for b in self.batches:
            for first, block in b.sample_blocks():
                rows.append(block)
                firsts.append(first)
        return firsts[0], np.concatenate(rows).reshape(-1, n_channels)


def connect(rig):
    link = SerialLink(open_port(rig.port))
    device = Device(link)
    link.start()
    device.connect(timeout_s=2.0)
    device.start_heartbeat()
    return device


def wait_for(predicate, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def stop(device):
    for _ in range(5):  # a corrupted ACK is lost like any frame: ask again
        try:
            return device.stop_stream()
        except DeviceTimeout:
            continue
    raise AssertionError("STOP_STREAM never acknowledged")


def test_stimulus_response_reaches_each_pair_after_distance_over_velocity():
    with SimulatedRig(seed=4, params=QUIET) as rig:
        device = connect(rig)
        seen = Collector(device)
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            device.start_stream()
            device.arm()
            onset = device.stimulate(StimPulse(amplitude_vpp=3.6, duration_s=3e-3))
            time.sleep(0.2)
            device.stop_stream()
        finally:
            device.close()
        truth = rig.ground_truth["stimuli"][0]
    assert truth["mgf_fired"] and not truth["lgf_fired"]
    [delivered] = seen.messages(StimDelivered)
    assert delivered.sample_index == onset
    first, data = seen.samples(4)
    window = data[onset - first : onset - first + 300].astype(float)
    peaks = []
    for ch in range(4):  # parabolic interpolation of the largest negative peak
        i = int(np.argmin(window[:, ch]))
        y0, y1, y2 = window[i - 1 : i + 2, ch]
        peaks.append(i + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))
    lags_s = np.diff(peaks) / 30_000
    assert lags_s == pytest.approx([0.02 / 30.0] * 3, rel=0.05)


def test_charge_per_phase_is_enforced_by_the_board():
    # No pulse within the default board's amplitude and duration limits is
    # over its charge limit: a board with a lower one.
    limits = BoardLimits(max_charge_per_phase_c=2e-6)
    with SimulatedRig(seed=2, limits=limits) as rig:
        device = connect(rig)
        try:
            device.arm()
            with pytest.raises(CommandRefused, match="CHARGE_LIMIT") as refused:
                device.stimulate(StimPulse(6.0, 6.7e-3))  # host checks bypassed
            assert refused.value.nak.value == 6398  # nC requested
            assert refused.value.nak.allowed_max == 2000
            assert rig.model.outcomes == []  # nothing was delivered
        finally:
            device.close()


def test_on_time_per_minute_is_enforced_by_the_board():
    limits = BoardLimits(max_on_time_s_per_min=0.05)
    with SimulatedRig(seed=2, limits=limits) as rig:
        device = connect(rig)
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            device.arm()
            device.stimulate(StimPulse(3.0, 5e-3, n_pulses=10, rate_hz=50.0))
            assert wait_for(lambda: len(rig.model.outcomes) == 10)
            time.sleep(0.02)
            with pytest.raises(CommandRefused, match="ON_TIME_LIMIT"):
                device.stimulate(StimPulse(3.0, 5e-3))
        finally:
            device.close()


FAULTS = {
    "bit flips": FaultPlan(seed=5, bit_flip_rate=1e-4),
    "byte drops": FaultPlan(seed=5, byte_drop_rate=1e-4),
    "duplicated bytes": FaultPlan(seed=5, byte_duplicate_rate=1e-4),
    "truncated frames": FaultPlan(seed=5, frame_truncate_rate=0.03),
    "duplicated frames": FaultPlan(seed=5, frame_duplicate_rate=0.03),
    "garbage bursts": FaultPlan(seed=5, garbage_burst_rate_hz=4.0),
    "stall": FaultPlan(seed=5, stalls=((0.3, 0.25),)),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_loss_accounting_is_exact_under_each_fault(name):
    plan = FAULTS[name]
    with SimulatedRig(seed=5, faults=plan) as rig:
        rig.faults.enabled = False
        device = connect(rig)
        seen = Collector(device)
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            start = device.start_stream()
            rig.faults.enabled = True
            time.sleep(0.8)
            rig.faults.enabled = False
            end = stop(device)
            c = device.counters
        finally:
            device.close()
        sent = rig.board.sent_samples
    assert end - start == sent
    assert c.samples_received + c.samples_lost == sent
    damaged = any(f["damaged"] for f in rig.frames_log)
    if name in ("stall", "duplicated frames"):
        assert c.samples_lost == 0  # late or repeated, never lost
    else:
        assert damaged and c.samples_lost > 0
    # Every received sample is the one the board sent with that sample number.
    _, data = seen.samples(4)
    assert data.shape[0] == c.samples_received


def test_reboot_is_reported_and_sample_numbers_keep_increasing():
    with SimulatedRig(seed=6, faults=FaultPlan(seed=6, reboot_at_s=0.4)) as rig:
        device = connect(rig)
        seen = Collector(device)
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            device.start_stream()
            assert wait_for(lambda: seen.messages(Boot), timeout_s=3.0)
            assert device.counters.reboots == 1
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            before = device.counters.samples_received
            device.start_stream()
            assert wait_for(lambda: device.counters.samples_received > before + 3000)
            firsts = [int(b.blocks[0, 0]) for b in seen.batches if len(b.blocks)]
            assert all(np.diff(firsts) > 0)
        finally:
            device.close()


def test_unplug_is_reported_within_500_ms():
    with SimulatedRig(seed=7) as rig:
        device = connect(rig)
        failed = threading.Event()
        device.add_error_listener(lambda err: failed.set())
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            device.start_stream()
            time.sleep(0.1)
            received = device.counters.samples_received
            t0 = time.monotonic()
            rig.unplug()
            assert failed.wait(2.0)
            assert time.monotonic() - t0 < 0.5
            assert isinstance(device.error, DeviceDisconnected)
            assert device.counters.samples_received >= received
        finally:
            device.close()
