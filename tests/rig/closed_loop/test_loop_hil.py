"""The closed loop on the simulated rig over its pseudo-terminal: it observes each
response, chooses the next stimulus before it is due, records every decision, can
be replayed offline, and obeys the rig's limits and the user's controls."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import rig.recording
from rig.closed_loop import BayesianSearch, ParameterSpace, replay_recorded
from rig.closed_loop.loop import ClosedLoop
from rig.core.connect import open_rig
from rig.protocols import ClosedLoopSpec, ObjectiveSpec
from rig.recording import RecordingWriter
from rig.safety import SafetyError

SPEC = ClosedLoopSpec(
    strategy="bayesian",
    n_stimuli=8,
    inter_stimulus_interval_s=0.25,
    objective=ObjectiveSpec(measure="amplitude_uv_mean"),
)


@pytest.fixture
def session():
    s = open_rig("sim://?seed=21")
    s.start()
    yield s
    s.close()


def record(session, folder):
    writer = RecordingWriter.create(
        folder, n_channels=4, sample_rate_hz=session.sample_rate_hz, metadata={}
    )
    session.start_recording(writer)


def test_every_response_is_observed_and_every_decision_recorded(session, tmp_path):
    record(session, tmp_path / "run")
    loop = ClosedLoop(session, SPEC, seed=3)
    final = loop.run(timeout_s=30)
    session.stop_recording()
    assert final.finish_reason.value == "completed" and final.trial == 8
    # Each stimulus's response reached the search: before the next decision,
    # or at a later one if a busy host was late (the last one, at the end).
    assert loop.missed_responses == 0
    assert len(loop.search.observations.points) == 8
    assert len(loop.host_latency_s) == 7  # one per decision that waited
    rec = rig.recording.open(tmp_path / "run")
    decisions = rec.events_of("optimiser")
    delivered = rec.events_of("stim_delivered")
    assert len(decisions) == len(delivered) == 8
    for decision, stim in zip(decisions, delivered):
        amplitude, duration, pair = decision["point"]
        assert stim["requested_vpp"] == pytest.approx(amplitude, abs=1e-3)
        assert stim["duration_s"] == pytest.approx(duration, abs=1e-6)
        assert ParameterSpace().contains(amplitude, duration, pair)
    # One more observation per decision, unless a busy host's response came
    # late: then it is learnt (and recorded) at a later decision.
    n_observations = [d["n_observations"] for d in decisions]
    assert n_observations[0] == 0 and n_observations == sorted(n_observations)
    learnt = [o for d in decisions for o in [*d["observed_late"], d["observed"]] if o]
    assert sorted(o["trial"] for o in learnt) == list(range(len(learnt)))
    assert len(learnt) == n_observations[-1]
    # The posterior over the space is recorded once the GP has data.
    last = decisions[-1]["posterior"]
    assert np.asarray(last["mean"]).shape == (16, 16)
    assert np.all(np.asarray(last["std"]) >= 0)


def test_a_recorded_session_replays_to_the_same_decisions(session, tmp_path):
    record(session, tmp_path / "run")
    ClosedLoop(session, SPEC, seed=3).run(timeout_s=30)
    session.stop_recording()
    decisions = rig.recording.open(tmp_path / "run").events_of("optimiser")
    replayed = replay_recorded(BayesianSearch(ParameterSpace(), seed=3), decisions)
    for recorded, again in zip(decisions, replayed):
        assert tuple(recorded["point"]) == pytest.approx(again.point)
        assert recorded["reason"] == again.reason


def test_approval_override_and_stop_are_obeyed(session, tmp_path):
    record(session, tmp_path / "run")
    spec = dataclasses.replace(SPEC, n_stimuli=5, inter_stimulus_interval_s=0.2)
    loop = ClosedLoop(session, spec, seed=1, require_approval=True)
    proposals = []
    session.events.optimiser_updated.connect(proposals.append)
    delivered = []
    session.events.stim_delivered.connect(lambda sample, f: delivered.append(f))

    def user():
        answers = iter(["accept", "override", "stop"])
        seen = 0
        while True:
            while len(proposals) <= seen:
                threading.Event().wait(0.01)
            seen += 1
            answer = next(answers)
            if answer == "accept":
                loop.accept()
            elif answer == "override":
                loop.override(3.0, 2e-3)
            else:
                loop.stop()
                return

    helper = threading.Thread(target=user)
    helper.start()
    final = loop.run(timeout_s=30)
    helper.join(5)
    session.stop_recording()
    assert final.trial == 2
    # The decision record says the second proposal was overridden, and by what.
    [override] = rig.recording.open(tmp_path / "run").events_of("optimiser_override")
    assert override["trial"] == 1 and override["delivered"] == [3.0, 0.002, 0]
    assert override["proposed"] == proposals[1]["point"]
    assert delivered[0]["requested_vpp"] == pytest.approx(proposals[0]["point"][0])
    assert delivered[1]["requested_vpp"] == 3.0
    assert delivered[1]["duration_s"] == 0.002
    with pytest.raises(ValueError, match="outside the search space"):
        loop.override(9.0, 2e-3)


def test_a_search_space_beyond_the_safety_limits_is_refused(session):
    unsafe = dataclasses.replace(SPEC, amplitude_vpp=(2.0, 8.0))
    with pytest.raises(SafetyError, match=r"amplitude_vpp = 8 exceeds"):
        ClosedLoop(session, unsafe)
    too_fast = dataclasses.replace(SPEC, inter_stimulus_interval_s=0.05)
    with pytest.raises(ValueError, match="below the rig's minimum 0.2 s"):
        ClosedLoop(session, too_fast)


def test_a_twitch_objective_needs_the_camera_and_time_for_the_twitch(session):
    twitch = ObjectiveSpec(measure="peak_displacement_mm")
    spec = dataclasses.replace(SPEC, objective=twitch, inter_stimulus_interval_s=1.0)
    with pytest.raises(ValueError, match="needs live segment tracking"):
        ClosedLoop(session, spec)  # this session has no camera


def test_a_twitch_objective_scores_each_stimulus_by_its_filmed_displacement():
    session = open_rig("sim://?seed=21", camera="sim")
    twitch = ObjectiveSpec(measure="peak_displacement_mm")
    spec = dataclasses.replace(
        SPEC, n_stimuli=5, inter_stimulus_interval_s=1.0, objective=twitch
    )
    motion = {}
    session.events.motion_measured.connect(
        lambda trial, r: motion.setdefault(r["stimulus_sample"], r)
    )
    try:
        session.start()
        threading.Event().wait(0.5)  # a baseline for the first twitch
        with pytest.raises(ValueError, match=r"must be at least 0.75 s"):
            ClosedLoop(
                session, dataclasses.replace(spec, inter_stimulus_interval_s=0.5)
            )
        loop = ClosedLoop(session, spec, seed=3)
        final = loop.run(timeout_s=30)
        onsets = [s["sample"] for s in session.stimuli]
    finally:
        session.close()
    assert final.finish_reason.value == "completed"
    assert loop.missed_responses == 0
    # On time, or late on a busy host (then learnt at a later decision).
    observed = [d["observed"] for d in loop.history[1:] if d["observed"]]
    observed += [o for d in loop.history for o in d["observed_late"]]
    observed += loop.late_observed  # learnt at the end of the run
    observed.sort(key=lambda o: o["trial"])
    assert [o["trial"] for o in observed] == [0, 1, 2, 3, 4]
    for o in observed:
        twitch_mm = motion[onsets[o["trial"]]]["peak_displacement_mm"]
        assert o["response"] == o["score"] == pytest.approx(twitch_mm)
    assert max(o["response"] for o in observed) > 0.3  # some stimuli twitched
    # How soon after the twitch window closed each decision came is a figure
    # of benchmarks/run.py closed_loop, measured with CPU-bound load beside it.


def test_a_stop_pressed_just_before_a_proposal_is_shown_still_stops(session):
    """Stop pressed after the loop chose its proposal but before it waits for
    the answer ends the run; it once left the runner waiting for ever."""
    spec = dataclasses.replace(SPEC, n_stimuli=5, inter_stimulus_interval_s=0.2)
    loop = ClosedLoop(session, spec, seed=1, require_approval=True)
    loop.stop()  # the race: the answer comes before the wait begins
    answered = []
    waiting = threading.Thread(
        target=lambda: answered.append(loop._await_approval((3.0, 2e-3, 0), "r", {})),
        daemon=True,
    )
    waiting.start()
    waiting.join(timeout=5.0)
    assert answered == [(None, "r")]  # stopped, not waiting for an answer


def test_decisions_run_at_a_raised_priority_where_permitted(session):
    """The runner thread decides at nice −10 where the system permits (here:
    root), so CPU-bound neighbours do not delay a decision; the thread goes
    back to its niceness when the run ends. Where not permitted it decides at
    the ordinary priority and the loop says so (priority_raised False)."""
    import os

    loop = ClosedLoop(session, dataclasses.replace(SPEC, n_stimuli=3), seed=3)
    seen: list[tuple[int, int]] = []
    propose = loop.search.propose

    def spying_propose():
        tid = threading.get_native_id()
        seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
        return propose()

    loop.search.propose = spying_propose
    before = os.getpriority(os.PRIO_PROCESS, 0)
    final = loop.run(timeout_s=30)
    assert final.finish_reason.value == "completed" and len(seen) == 3
    permitted = os.geteuid() == 0
    assert loop.priority_raised is permitted
    expected = -10 if permitted else before
    assert {niceness for _, niceness in seen} == {expected}
    [tid] = {tid for tid, _ in seen}
    try:
        assert os.getpriority(os.PRIO_PROCESS, tid) == before  # restored
    except ProcessLookupError:
        pass  # the runner thread has ended: nothing left to restore
