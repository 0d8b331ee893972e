"""Session over the simulated rig's pseudo-terminal: run, record, reopen, compare."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import rig.recording
from firmware_bridge import StimPulse
from firmware_bridge.device import Device
from firmware_bridge.sim import FaultPlan, SimulatedRig
from rig.core.connect import open_rig
from rig.core.runner import FinishReason, RunState
from rig.protocols import parse_protocol
from rig.recording import RecordingWriter
from rig.safety import SafetyError
from tests._rigs import session_on

PROTOCOL = """format_version = 1
[protocol]
name = "hil"
seed = 3
[[block]]
amplitude_vpp = [2.5, 4.0, 5.5]
duration_ms = [2.0, 5.0]
order = "random"
inter_stimulus_interval_s = 0.25
"""


def open_session(simulator, **kwargs):
    return session_on(simulator, **kwargs)


def record(session, folder):
    writer = RecordingWriter.create(
        folder,
        n_channels=session.n_channels,
        sample_rate_hz=session.sample_rate_hz,
        metadata={"test": True},
    )
    session.start_recording(writer)
    return writer


def test_protocol_run_records_every_stimulus_and_every_frame(tmp_path):
    rig_ = SimulatedRig(seed=11, faults=FaultPlan(seed=11, camera_drop_rate=0.08))
    # 30 fps: drops are found from arrival times, so give host jitter room.
    session = open_session(rig_, camera=rig_.camera(), camera_rate_hz=30.0)
    plan = parse_protocol(PROTOCOL).expand()
    try:
        session.start()
        record(session, tmp_path / "run")
        final = session.run_protocol(plan.trials, wait=True)
        time.sleep(0.1)
        session.stop()
        session.stop_recording()
    finally:
        session.close()
    truth = rig_.ground_truth
    assert final.finish_reason == FinishReason.COMPLETED
    rec = rig.recording.open(tmp_path / "run")
    stim = rec.events_of("stim_delivered")
    assert [e["sample"] for e in stim] == [s["onset_sample"] for s in truth["stimuli"]]
    assert [e["commanded_vpp"] for e in stim] == [t.pulse.amplitude_vpp for t in plan]
    assert [e["duration_s"] for e in stim] == pytest.approx(
        [t.pulse.duration_s for t in plan]
    )
    assert [e["sample"] for e in rec.events_of("trial")] == [e["sample"] for e in stim]
    # Frames: every recorded frame is stamped with its own trigger's sample
    # (the first may belong to a trigger just before recording began), and
    # the frames the camera dropped are named.
    triggers = {count: sample for sample, count, _ in session.frame_clock.triggers()}
    dropped = set(truth["camera_frames_dropped"])
    n_delivered = len(session.frame_clock.match()[0])
    delivered = [c for c in sorted(triggers) if c not in dropped][:n_delivered]
    n_recorded = len(rec.frame_times)
    assert rec.frame_samples.tolist() == [triggers[c] for c in delivered[-n_recorded:]]
    # The drops are named from the frames the table proves (arrival times
    # named a neighbouring trigger under load): never a wrong one, and every
    # one when every frame is proven.
    [report] = rec.events_of("frame_report")
    truly = {c for c in dropped if c < delivered[-1]}
    named = set(report["dropped_triggers"])
    assert dropped and report["dropped_triggers_from"] == "frame_table"
    assert named <= truly, (named, truly)
    if all(source == "led_code" for source in rec.frame_sources):
        assert named == truly and report["n_drops_not_named"] == 0
    else:
        assert len(truly) - len(named) <= report["n_drops_not_named"] + 1
    assert rec.samples.shape[0] == rec.metadata["n_rows"] > 0


def test_gaps_in_the_recording_are_exactly_where_frames_were_lost(tmp_path):
    plan = FaultPlan(seed=12, frame_truncate_rate=0.08)
    rig_ = SimulatedRig(seed=12, faults=plan)
    rig_.faults.enabled = False
    session = open_session(rig_)
    try:
        session.start()
        record(session, tmp_path / "run")
        rig_.faults.enabled = True
        time.sleep(1.0)
        rig_.faults.enabled = False
        time.sleep(0.1)
        session.stop()
        session.stop_recording()
    finally:
        session.close()
    lost = [(f["first"], f["n"]) for f in rig_.frames_log if f["damaged"]]
    merged: list[list[int]] = []
    for first, n in lost:  # neighbouring lost frames make one gap
        if merged and merged[-1][0] + merged[-1][1] == first:
            merged[-1][1] += n
        else:
            merged.append([first, n])
    rec = rig.recording.open(tmp_path / "run")
    assert len(merged) >= 3
    assert rec.gaps.tolist() == merged
    numbers = rec.sample_numbers()
    for first, n in merged:
        assert not np.isin(np.arange(first, first + n), numbers).any()
    assert rec.metadata["samples_lost"] == sum(n for _, n in merged)


def test_host_safety_limits_refuse_before_anything_is_sent():
    with SimulatedRig(seed=13) as rig_:
        session = open_session(rig_)
        try:
            session.start()
            session.arm()
            with pytest.raises(SafetyError, match="amplitude_vpp = 6.5"):
                session.stimulate(StimPulse(6.5, 3e-3))
            assert rig_.model.outcomes == []
            session.stimulate(StimPulse(3.0, 3e-3))
            assert len(rig_.model.outcomes) == 1
        finally:
            session.close()


def test_emergency_stop_disarms_the_board_mid_run():
    with SimulatedRig(seed=14) as rig_:
        session = open_session(rig_)
        plan = parse_protocol(PROTOCOL.replace("0.25", "0.3")).expand()
        try:
            session.start()
            session.run_protocol(plan.trials)
            time.sleep(0.4)
            session.emergency_stop()
            final = session.runner.wait(5)
            assert final.phase == RunState.IDLE
            assert final.finish_reason == FinishReason.EMERGENCY_STOP
            assert not rig_.board.armed
            delivered = len(rig_.model.outcomes)
            time.sleep(0.4)
            assert len(rig_.model.outcomes) == delivered < len(plan)
        finally:
            session.close()


def test_an_emergency_stop_holds_until_reset_and_is_recorded(tmp_path):
    from rig.core.session import EmergencyStopHeld

    with SimulatedRig(seed=16) as rig_:
        session = open_session(rig_)
        plan = parse_protocol(PROTOCOL).expand()
        try:
            session.start()
            record(session, tmp_path / "run")
            session.arm()
            session.emergency_stop()
            with pytest.raises(EmergencyStopHeld, match="until it is reset"):
                session.run_protocol(plan.trials)  # it used to re-arm by itself
            with pytest.raises(EmergencyStopHeld):
                session.arm()
            assert not rig_.board.armed
            session.reset_fault()
            session.arm()
            assert rig_.board.armed
            session.disarm()
            session.stop_recording()
        finally:
            session.close()
    events = rig.recording.open(tmp_path / "run").events_of("emergency_stop")
    assert len(events) == 1


def test_unplug_faults_the_run_and_keeps_the_recording_readable(tmp_path):
    rig_ = SimulatedRig(seed=15)
    session = open_session(rig_)
    errors = []
    session.events.error_occurred.connect(errors.append)
    plan = parse_protocol(PROTOCOL).expand()
    try:
        session.start()
        record(session, tmp_path / "run")
        session.run_protocol(plan.trials)
        time.sleep(0.6)
        rig_.unplug()
        final = session.runner.wait(5)
        assert final.phase == RunState.FAULT
        assert "went away" in final.message
        assert errors and "went away" in str(errors[0])
    finally:
        session.close()
    rec = rig.recording.open(tmp_path / "run")
    assert rec.samples.shape[0] > 0.4 * 30_000
    assert len(rec.events_of("stim_delivered")) >= 2


def test_open_rig_with_sim_url_starts_and_stops_the_rig():
    session = open_rig("sim://?seed=16&channels=8", camera="sim")
    try:
        assert session.n_channels == 8
        assert session.rig.simulated and len(session.positions_m) == 8
        assert session.rig.raceway_origin_px == 40.0  # the simulated optics
        port = session.device.link.port.port
        assert port.startswith("/dev/pts/")  # a real pseudo-terminal
        session.start()
        time.sleep(0.2)
        assert session.acquisition.ring.end > 0
    finally:
        session.close()
    assert not os.path.exists(port)  # the simulator went with the session
    with pytest.raises(ValueError, match=r"unknown sim:// options \['speed'\]"):
        open_rig("sim://?speed=3")
    with pytest.raises(ValueError, match="open_rig"):
        Device.open("sim://?seed=1")  # the device knows no simulator


def test_open_rig_refuses_a_bad_camera_and_leaves_the_port_free():
    with SimulatedRig(seed=1) as simulator:  # a board on a port, to open_rig
        with pytest.raises(OSError, match="--camera sim needs the simulated rig"):
            open_rig(simulator.port, camera="sim")
        with pytest.raises(OSError, match="does not exist"):
            open_rig(simulator.port, camera="no-such-video.avi")
        # Opened exclusively: this succeeds only if the failures closed the port.
        Device.open(simulator.port).close()


def test_online_results_equal_offline_analysis_of_the_recording(tmp_path):
    from analysis.pipeline import Stimulus, analyse_stimuli

    rig_ = SimulatedRig(seed=17)
    session = open_session(rig_)
    online = []
    session.events.response_measured.connect(
        lambda trial, result: online.append(result)
    )
    try:
        session.start()
        record(session, tmp_path / "run")
        session.arm()
        for amplitude in (2.0, 3.4, 4.2, 5.8):
            session.stimulate(StimPulse(amplitude, 3e-3))
            time.sleep(0.25)
        time.sleep(0.2)
        session.stop()
        session.stop_recording()
    finally:
        session.close()
    rec = rig.recording.open(tmp_path / "run")
    numbers = rec.sample_numbers()
    uv = session.device.info.volts_per_count(session.gain) * 1e6

    def read_uv(first, n):
        if first < numbers[0] or first + n - 1 > numbers[-1]:
            return None
        row = int(np.searchsorted(numbers, first))
        return rec.samples[row : row + n].astype(np.float64) * uv

    stimuli = [
        Stimulus(e["sample"], e["commanded_vpp"], e["duration_s"])
        for e in rec.events_of("stim_delivered")
    ]
    offline = analyse_stimuli(
        read_uv, stimuli, fs_hz=30_000.0, positions_m=session.positions_m,
        clip_uv=32767 * uv,  # as neurorig analyze reads a recording
    )  # fmt: skip
    assert len(offline) == 4
    # The first stimulus comes 3 ms into the stream: the recording (which
    # starts a moment after the stream) may not hold its epoch.
    analysed = {r.onset_sample: r for r in offline if r is not None}
    assert len(analysed) >= 3 and len(online) >= 3
    assert sum(r["responded"] for r in online) >= 2
    both = [on for on in online if on["stimulus_sample"] in analysed]
    assert len(both) >= 3
    for on in both:
        off = analysed[on["stimulus_sample"]]
        assert on == {**on, **off.to_dict()}  # every analysed field identical


def test_frame_history_is_pruned_between_recordings_and_kept_during_one(tmp_path):
    rig_ = SimulatedRig(seed=4)
    session = open_session(rig_, camera=rig_.camera(), camera_rate_hz=60.0)
    session.frame_history_s = 1.0  # the rig keeps 60 s; a second shows the same
    try:
        session.start()
        time.sleep(2.5)
        assert session.frame_clock.held()[0] < 90  # ~1–1.2 s of 60 fps
        writer = record(session, tmp_path / "run")
        time.sleep(2.5)
        assert session.frame_clock.held()[0] > 140  # pinned since the start
        session.stop_recording()
        time.sleep(1.0)
        assert session.frame_clock.held()[0] < 90
    finally:
        session.close()
    rec = rig.recording.open(tmp_path / "run")
    assert len(rec.frame_times) == writer.stats.frames > 140
    stamped = rec.frame_samples[rec.frame_samples >= 0]
    assert len(stamped) >= len(rec.frame_times) - 1  # the table survived the pruning
    assert np.all(np.diff(stamped) > 0)


def test_starting_a_session_tunes_the_interpreter_for_its_reader_thread():
    import gc
    import sys

    sys.setswitchinterval(0.005)  # CPython's default
    gc.unfreeze()
    session = open_rig("sim://?seed=2")
    try:
        session.start()
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        assert gc.get_freeze_count() > 1000  # modules and long-lived objects
    finally:
        session.close()
