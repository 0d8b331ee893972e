"""The fail-safe rule over the simulated rig's pseudo-terminal: whatever makes
stimulating unsafe disarms the board at once, latches until reset, is recorded
(a ``fail_safe`` event and the recording's status) and is said
(``fault_raised``)."""

from __future__ import annotations

import time

import pytest

import rig.recording
from calibration import CalibrationSet, StimulatorCalibration
from firmware_bridge.sim import SimulatedRig
from rig.core.runner import RunState
from rig.protocols import parse_protocol
from rig.recording import RecordingWriter
from tests._rigs import session_on

PLAN = """format_version = 1
[protocol]
name = "fail-safe"
seed = 1
[[block]]
amplitude_vpp = [3.0, 4.0, 5.0]
duration_ms = 3.0
repeats = 4
inter_stimulus_interval_s = 0.25
"""


def record(session, folder):
    session.start_recording(
        RecordingWriter.create(
            folder, n_channels=4, sample_rate_hz=session.sample_rate_hz, metadata={}
        )
    )


def started(simulator, **kwargs):
    session = session_on(simulator, **kwargs)
    said = []
    session.events.fault_raised.connect(said.append)
    session.start()
    return session, said


def wait_for(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_runner_thread_that_dies_disarms_the_board_and_is_recorded(tmp_path):
    # A malformed calibration (strings for coefficients) raises TypeError on
    # the runner thread: before, the run stayed "running" with the board armed.
    malformed = StimulatorCalibration(
        coefficients=["a", "b", "c"],  # type: ignore[list-item]
        commanded_min_vpp=1.0,
        commanded_max_vpp=6.0,
        fitted_at="2026-01-01T00:00:00+00:00",
        rig_id="test",
        residual_rms=0.0,
        n_measurements=10,
    )
    simulator = SimulatedRig(seed=3)
    calibrations = CalibrationSet({"stimulator": malformed}, [])
    session, said = started(simulator, calibrations=calibrations)
    try:
        record(session, tmp_path / "run")
        session.run_protocol(parse_protocol(PLAN).expand().trials)
        final = session.runner.wait(5)
        assert final.phase == RunState.FAULT
        assert "TypeError" in final.message
        assert not simulator.board.armed
        wait_for(lambda: any("TypeError" in text for text in said))
        with pytest.raises(RuntimeError, match="cannot arm while fault"):
            session.arm()  # latched until reset
        session.stop_recording()
    finally:
        session.close()
    rec = rig.recording.open(tmp_path / "run")
    assert rec.status == "fault:runner"
    [event] = rec.events_of("fail_safe")
    assert event["outcome"] == "fault:runner" and "TypeError" in event["reason"]


def test_host_silence_faults_the_board_and_the_recording_says_so(tmp_path):
    simulator = SimulatedRig(seed=4)
    session, said = started(simulator)
    try:
        record(session, tmp_path / "run")
        session.arm()
        assert simulator.board.armed
        session.device.stop_heartbeat()  # the host goes quiet: the board's watchdog
        wait_for(lambda: any("HOST_LOSS" in text for text in said), 3.0)
        assert session.runner.status.phase == RunState.FAULT
        assert not simulator.board.armed
        session.stop_recording()
    finally:
        session.close()
    rec = rig.recording.open(tmp_path / "run")
    assert rec.status == "fault:HOST_LOSS"
    assert [e["code"] for e in rec.events_of("fault")] == ["HOST_LOSS"]


def test_an_unplugged_board_is_the_recordings_outcome(tmp_path):
    simulator = SimulatedRig(seed=5)
    session, said = started(simulator)
    try:
        record(session, tmp_path / "run")
        session.run_protocol(parse_protocol(PLAN).expand().trials)
        time.sleep(0.4)
        simulator.unplug()
        wait_for(lambda: any("went away" in text for text in said))
        assert session.runner.status.phase == RunState.FAULT
    finally:
        session.close()  # stops the recording with what it knows
    rec = rig.recording.open(tmp_path / "run")
    assert rec.status == "unplugged"
    assert rec.events_of("fail_safe")[0]["outcome"] == "unplugged"


@pytest.mark.parametrize(
    ("act", "status"),
    [("complete", "completed"), ("cancel", "cancelled"), ("stop", "emergency_stop")],
)
def test_how_a_run_ended_is_the_recordings_status(tmp_path, act, status):
    simulator = SimulatedRig(seed=6)
    session, _ = started(simulator)
    text = PLAN.replace("repeats = 4", "repeats = 1")
    try:
        record(session, tmp_path / "run")
        session.run_protocol(parse_protocol(text).expand().trials)
        time.sleep(0.3)
        if act == "cancel":
            session.runner.cancel()
        elif act == "stop":
            session.emergency_stop()
        session.runner.wait(5)
        session.stop_recording()
    finally:
        session.close()
    assert rig.recording.open(tmp_path / "run").status == status


def test_a_full_disk_stops_the_stimulation_and_the_recording_says_so(tiny_fs):
    # A real 6 MiB filesystem: 30 kS/s x 4 ch and 60 fps video fill it in seconds.
    disk = tiny_fs(6 * 1024 * 1024)
    simulator = SimulatedRig(seed=8)
    session, said = started(simulator, camera=simulator.camera())
    try:
        session.start_recording(
            RecordingWriter.create(
                disk / "run",
                n_channels=4,
                sample_rate_hz=session.sample_rate_hz,
                metadata={},
                free_space_reserve_s=1.0,
                free_space_floor_bytes=1024 * 1024,
            )
        )
        long_plan = parse_protocol(PLAN.replace("repeats = 4", "repeats = 40"))
        session.run_protocol(long_plan.expand().trials)
        wait_for(lambda: any("disk" in text for text in said), 30.0)
        wait_for(lambda: session.runner.status.phase == RunState.FAULT)
        assert not simulator.board.armed  # disarmed at once, not at the plan's end
        delivered = len(session.stimuli)
        time.sleep(0.6)  # two more trial periods: nothing more is delivered
        assert len(session.stimuli) == delivered
        with pytest.raises(RuntimeError, match="cannot arm while fault"):
            session.arm()
        assert session.acquisition.ring.end > 0  # acquisition goes on
    finally:
        session.close()
    rec = rig.recording.open(disk / "run")
    assert rec.status == "disk_full"
    # No room for a fail_safe event: the metadata's stop_reason says why.
    assert "free" in rec.metadata["stop_reason"]
    assert not list((disk / "run").rglob("*.tmp"))
