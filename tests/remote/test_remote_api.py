"""The remote API over the simulated rig, from a second process.

``neurorig serve --sim`` runs in its own process (tests/remote/_served.py);
these tests are its clients, over real ZeroMQ sockets on loopback, exactly as
a notebook would be.
"""

from __future__ import annotations

import stat
import time

import pytest
import zmq

from firmware_bridge.stimulus import StimPulse
from rig.protocols import parse_protocol
from rig.remote import AuthenticationFailed, RemoteError, connect
from rig.safety import SafetyError, check_protocol, default_safety_limits

PULSE = {"amplitude_vpp": 4.0, "duration_s": 3e-3}


def test_the_token_file_is_the_owners_alone_and_holds_the_printed_token(served):
    mode = served.token_file.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert served.token_file.read_text().strip() == served.token
    assert len(served.token) >= 40  # 256 random bits


def test_arm_then_disarm(remote):
    assert remote.status()["armed"] is False
    remote.arm()
    status = remote.status()
    assert status["armed"] is True and status["phase"] == "armed"
    remote.disarm()
    assert remote.status()["armed"] is False


def test_an_out_of_limits_pulse_is_refused_with_the_rigs_own_message(remote):
    remote.arm()
    before = remote.status()["stimuli_delivered"]
    with pytest.raises(SafetyError) as local:  # what the rig says, locally
        default_safety_limits().check(StimPulse(amplitude_vpp=9.0, duration_s=3e-3))
    with pytest.raises(RemoteError) as refused:
        remote.stimulate(amplitude_vpp=9.0, duration_s=3e-3)
    assert refused.value.kind == "SafetyError"
    assert str(refused.value) == str(local.value)
    assert refused.value.field == "amplitude_vpp"
    # a StimPulse passed whole goes through the same check
    with pytest.raises(RemoteError, match="duration_ms = 20 exceeds"):
        remote.stimulate(StimPulse(amplitude_vpp=4.0, duration_s=20e-3))
    assert remote.status()["stimuli_delivered"] == before  # nothing was sent


def test_five_stimuli_give_five_responses_to_a_subscriber(remote):
    with remote.subscribe(["response_measured"]) as responses:
        remote.arm()
        onsets = []
        for _ in range(5):
            onsets.append(remote.stimulate(**PULSE))
            time.sleep(0.4)  # past the response window and the rig's minimum ISI
        received = [responses.next(timeout_s=10) for _ in range(5)]
    assert [e.name for e in received] == ["response_measured"] * 5
    results = [e.args["result"] for e in received]
    assert [r["stimulus_sample"] for r in results] == onsets
    assert all(r["amplitude_vpp"] == 4.0 for r in results)
    assert all(r["responded"] for r in results), results  # the worm answered at 4 Vpp
    assert responses.lost == 0


def test_emergency_stop_through_the_api_disarms_and_holds(remote):
    with remote.subscribe(["armed_changed"]) as armed:
        remote.arm()
        assert armed.next(timeout_s=5).args == {"armed": True}
        remote.emergency_stop()
        assert armed.next(timeout_s=5).args == {"armed": False}
    status = remote.status()
    assert status["armed"] is False
    assert status["emergency_latched"] is True
    assert status["emergency_stop_origin"] == "remote"
    with pytest.raises(RemoteError) as refused:
        remote.arm()
    assert refused.value.kind == "EmergencyStopHeld"
    with pytest.raises(RemoteError, match="emergency stop holds"):
        remote.stimulate(**PULSE)
    remote.reset()  # a remote stop may be released remotely
    assert remote.status()["emergency_latched"] is False
    remote.arm()
    assert remote.status()["armed"] is True


def test_a_wrong_or_missing_token_is_refused(served, remote):
    with pytest.raises(AuthenticationFailed, match="refused the token"):
        connect(served.address, "not-the-token", timeout_s=5)
    with pytest.raises(RemoteError, match="token is empty"):
        connect(served.address, "", timeout_s=5)
    # A program without the token (no credentials at all) gets no answer: its
    # connection never passes the handshake, so its request never arrives.
    ctx = zmq.Context()
    try:
        raw = ctx.socket(zmq.REQ)
        raw.linger = 0
        raw.connect(served.address)
        raw.send(b'{"id": 1, "command": "arm"}')
        assert raw.poll(2000) == 0
        events = ctx.socket(zmq.SUB)
        events.linger = 0
        events.subscribe(b"")
        events.connect(served.events_address)
        remote.arm()  # publishes armed_changed, run_state_changed
        assert events.poll(1000) == 0  # nothing reaches a subscriber without it
    finally:
        ctx.destroy(linger=0)
    assert remote.status()["armed"] is True  # armed by the real client only
    remote.disarm()


def test_a_run_of_a_protocol_is_checked_then_run_and_recorded(remote, served):
    text = (
        "format_version = 1\n[protocol]\nname = 'remote-short'\nseed = 1\n"
        "[[block]]\namplitude_vpp = [3.0, 4.0, 5.0]\nduration_ms = 3.0\n"
        "inter_stimulus_interval_s = 0.3\n"
    )
    finished = remote.run_protocol(text, record=True, wait=True, timeout_s=30)
    assert finished["completed"] is True
    assert finished["status"] == "completed"
    assert finished["stimuli_delivered"] >= 3
    folder = served.out / finished["recording"].split("/")[-1]
    assert (folder / "attachments" / "remote.toml").read_text() == text
    # a protocol over the limits is refused whole, before anything is sent
    too_strong = text.replace("[3.0, 4.0, 5.0]", "[3.0, 9.0]")
    with pytest.raises(ValueError) as local:
        check_protocol(parse_protocol(too_strong), default_safety_limits())
    with pytest.raises(RemoteError) as refused:
        remote.run_protocol(too_strong)
    assert refused.value.kind == type(local.value).__name__
    assert str(refused.value) == str(local.value)
    assert remote.status()["phase"] != "running"


def test_recording_with_a_note(remote, served):
    folder = remote.start_recording()
    assert remote.note("worm 7, second session") is True
    stopped = remote.stop_recording()
    assert stopped["recording"] == folder and stopped["status"] == "completed"
    events = (served.out / folder.split("/")[-1] / "events.jsonl").read_text()
    assert "worm 7, second session" in events
    assert remote.note("not recording") is False
