"""Retries and reconciliation over the simulated rig on its pty (docs/protocol.md §9).

Targeted faults (``FaultPlan.damage_frames``, ``lose_commands``, ``stall_after``)
hit exactly one frame, so the counts below are exact; the simulator's ground
truth says how many stimuli the worm really got.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import StimPulse
from firmware_bridge.device import Device
from firmware_bridge.errors import CommandOutcomeUnknown, DeviceTimeout
from firmware_bridge.link import RetryPolicy, SerialLink
from firmware_bridge.protocol import GetStatus, StatusFlag, StimDelivered
from firmware_bridge.sim import FaultPlan, SimulatedRig
from firmware_bridge.transport import open_port

PULSE = StimPulse(amplitude_vpp=3.0, duration_s=3e-3)


def connect(rig, *, heartbeat=True, timeout_s=1.0, retry=None):
    link = SerialLink(open_port(rig.port), retry=retry)
    device = Device(link)
    link.start()
    device.connect(timeout_s=timeout_s)
    if heartbeat:
        device.start_heartbeat()
    return device


def events(device, kind):
    seen = []
    device.add_listener(
        lambda d: seen.extend(m for m in d.messages if isinstance(m, kind))
    )
    return seen


def test_one_damaged_hello_reply_connects_with_one_early_retry():
    plan = FaultPlan(damage_frames=(("HELLO_REPLY", 0),))
    with SimulatedRig(seed=11, faults=plan) as rig:
        link = SerialLink(open_port(rig.port))
        device = Device(link)
        link.start()
        t0 = time.monotonic()
        device.connect(timeout_s=2.0)
        took_s = time.monotonic() - t0
        try:
            assert device.info.board_id == "neurorig-sim"
            counts = device.request_counters
            assert (counts.retries, counts.early_retries, counts.timeouts) == (1, 1, 0)
            assert device.counters.frames_corrupt == 1
            assert rig.faults.frames_damaged == 1
            # Resent on the damaged frame, not after the 2 s timeout.
            assert took_s < 1.0
        finally:
            device.close()


def test_a_lost_reply_without_damage_is_retried_after_the_timeout():
    # The board never gets the first GET_STATUS: nothing damaged, so only the
    # timeout can tell, and the command is idempotent: sent again.
    plan = FaultPlan(lose_commands=(("GET_STATUS", 0),))
    with SimulatedRig(seed=12, faults=plan) as rig:
        device = connect(rig, heartbeat=False)
        try:
            t0 = time.monotonic()
            status = device.link.request(GetStatus(), timeout_s=0.3)
            assert time.monotonic() - t0 >= 0.3
            assert status.sample_index > 0
            counts = device.request_counters
            assert (counts.retries, counts.early_retries) == (1, 0)
            assert rig.faults.commands_lost == 1
        finally:
            device.close()


def test_a_stall_longer_than_the_timeout_after_a_delivered_stimulus_is_reconciled():
    plan = FaultPlan(stall_after=(("STIMULATE", 2.0),))
    with SimulatedRig(seed=13, faults=plan) as rig:
        device = connect(rig)
        delivered = events(device, StimDelivered)
        try:
            device.configure(sample_rate_hz=30_000, channels=4, gain=1000)
            device.arm()
            t0 = time.monotonic()
            onset = device.stimulate(PULSE)  # ACK held 2 s; timeout 1 s
            took_s = time.monotonic() - t0
            time.sleep(0.1)
            counts = device.request_counters
        finally:
            device.close()
        truth = rig.model.outcomes
    # Exactly one stimulus, and the onset returned is the board's.
    assert [o.onset_sample for o in truth] == [onset]
    assert [(m.sample_index, m.pulse_index) for m in delivered] == [(onset, 0)]
    assert 1.9 < took_s < 3.5
    assert (counts.reconciled, counts.resent, counts.unknown) == (1, 0, 0)
    assert counts.timeouts == 0


def test_a_damaged_stimulate_ack_is_settled_by_its_stim_delivered_at_once():
    plan = FaultPlan(damage_frames=(("ACK:STIMULATE", 0),))
    with SimulatedRig(seed=14, faults=plan) as rig:
        device = connect(rig)
        try:
            device.arm()
            t0 = time.monotonic()
            onset = device.stimulate(PULSE)
            took_s = time.monotonic() - t0
            counts = device.request_counters
        finally:
            device.close()
        truth = rig.model.outcomes
    assert took_s < 0.5  # no timeout: the STIM_DELIVERED came ms later
    assert (counts.reconciled, counts.resent, counts.timeouts) == (1, 0, 0)
    assert [o.onset_sample for o in truth] == [onset]


def test_a_stimulate_the_board_never_received_is_sent_once_more():
    plan = FaultPlan(lose_commands=(("STIMULATE", 0),))
    with SimulatedRig(seed=15, faults=plan) as rig:
        device = connect(rig)
        try:
            device.arm()
            onset = device.stimulate(PULSE)
            counts = device.request_counters
        finally:
            device.close()
        truth = rig.model.outcomes
    assert rig.faults.commands_lost == 1
    assert (counts.resent, counts.reconciled, counts.timeouts) == (1, 0, 0)
    assert [o.onset_sample for o in truth] == [onset]


def test_a_stimulate_lost_twice_is_reported_as_not_executed():
    plan = FaultPlan(lose_commands=(("STIMULATE", 0), ("STIMULATE", 1)))
    retry = RetryPolicy(reconcile_s=1.0)
    with SimulatedRig(seed=16, faults=plan) as rig:
        device = connect(rig, retry=retry)
        try:
            device.arm()
            with pytest.raises(DeviceTimeout, match="never reached the board") as info:
                device.stimulate(PULSE)
            counts = device.request_counters
        finally:
            device.close()
        truth = rig.model.outcomes
    assert not isinstance(info.value, CommandOutcomeUnknown)
    assert (counts.resent, counts.unknown, counts.timeouts) == (1, 0, 1)
    assert truth == []


def test_a_stimulus_with_no_evidence_either_way_is_reported_as_unknown():
    # ACK and STIM_DELIVERED both damaged: the board did deliver it, but the
    # host cannot know, and says so instead of guessing or sending it again.
    plan = FaultPlan(damage_frames=(("ACK:STIMULATE", 0), ("STIM_DELIVERED", 0)))
    retry = RetryPolicy(reconcile_s=0.5)
    with SimulatedRig(seed=17, faults=plan) as rig:
        device = connect(rig, retry=retry)
        try:
            device.arm()
            with pytest.raises(CommandOutcomeUnknown) as info:
                device.stimulate(PULSE)
            counts = device.request_counters
        finally:
            device.close()
        truth = rig.model.outcomes
    message = str(info.value)
    assert "the stimulus may or may not have been delivered" in message
    assert "recording's events (STIM_DELIVERED) tell" in message
    assert "no reply to STIMULATE" in message
    assert info.value.command == "STIMULATE" and len(info.value.seqs) == 1
    assert (counts.unknown, counts.resent, counts.reconciled) == (1, 0, 0)
    assert len(truth) == 1  # delivered once, never twice


def test_get_status_succeeds_under_5_percent_bit_flips():
    plan = FaultPlan(seed=18, bit_flip_rate=0.05)
    with SimulatedRig(seed=18, faults=plan) as rig:
        rig.faults.enabled = False  # a clean handshake (its reply is 80 bytes)
        device = connect(rig)
        try:
            device.arm()
            rig.faults.enabled = True
            statuses = [device.status() for _ in range(5)]
            rig.faults.enabled = False
            counts = device.request_counters
        finally:
            device.close()
    samples = [s.sample_index for s in statuses]
    assert samples == sorted(samples) and samples[0] > 0
    assert all(s.flags & StatusFlag.ARMED for s in statuses)
    assert counts.retries > 0 and counts.timeouts == 0
    assert rig.faults.frames_damaged > 0


# Idempotent commands and the reply each one gets (the frame kind damaged).
COMMANDS = {
    "configure": (
        lambda d: d.configure(sample_rate_hz=30_000, channels=4, gain=500),
        "ACK:CONFIGURE",
    ),
    "arm": (lambda d: d.arm(), "ACK:ARM"),
    "disarm": (lambda d: d.disarm(), "ACK:DISARM"),
    "status": (lambda d: d.status(), "STATUS"),
    "hello": (lambda d: d.connect(), "HELLO_REPLY"),
    "reset_fault": (lambda d: d.reset_fault(), "ACK:RESET_FAULT"),
    "test_signal_off": (lambda d: d.test_signal(enable=False), "ACK:TEST_SIGNAL"),
    "camera_off": (lambda d: d.set_camera_trigger(0), "ACK:CAMERA_TRIGGER"),
    "stop_stream": (lambda d: d.stop_stream(), "ACK:STOP_STREAM"),
}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(COMMANDS)), st.integers(0, 2)),
        min_size=1,
        max_size=6,
    )
)
def test_idempotent_commands_survive_damaged_replies_with_exact_retry_counts(script):
    """Each command's first ``k`` replies damaged (k < attempts): every command
    succeeds, one early retry per damaged reply, and the board ends in the state
    the commands asked for."""
    damage, seen = [], {"HELLO_REPLY": 1}  # the handshake's reply is not damaged
    for name, k in script:
        kind = COMMANDS[name][1]
        n = seen.get(kind, 0)
        damage += [(kind, n + i) for i in range(k)]
        seen[kind] = n + k + 1
    plan = FaultPlan(damage_frames=tuple(damage))
    with SimulatedRig(seed=19, faults=plan) as rig:
        device = connect(rig, heartbeat=False)
        try:
            for name, _ in script:
                COMMANDS[name][0](device)
            counts = device.request_counters
        finally:
            device.link.close()  # not close(): its DISARM would change the state
        armed = rig.board.armed
    assert counts.retries == counts.early_retries == len(damage)
    assert counts.timeouts == 0
    assert rig.faults.frames_damaged == len(damage)
    last_arming = [n for n, _ in script if n in ("arm", "disarm")]
    assert armed == (bool(last_arming) and last_arming[-1] == "arm")
