"""ProtocolRunner state machine with a recording fake stimulator (no I/O needed)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from firmware_bridge import StimPulse
from firmware_bridge.errors import CommandRefused
from firmware_bridge.protocol import Nak
from rig.core.runner import FinishReason, ProtocolRunner, RunState


@dataclass(frozen=True)
class T:
    index: int
    pulse: StimPulse
    onset_s: float


class Board:
    """Counts calls; optionally blocks a stimulus until released."""

    def __init__(self, refuse_at=None):
        self.stimulated = []
        self.armed = False
        self.refuse_at = refuse_at
        self.gate = threading.Event()
        self.gate.set()

    def arm(self):
        self.armed = True

    def disarm(self):
        self.armed = False

    def stimulate(self, pulse):
        self.gate.wait(5)
        if len(self.stimulated) == self.refuse_at:
            raise CommandRefused(Nak(0x0A, 0, 4, 0, 0, 0, 0))
        self.stimulated.append(pulse)
        return 1000 * len(self.stimulated)


def plan(n, isi_s=0.0):
    return [T(i, StimPulse(2.0 + i * 0.1, 3e-3), i * isi_s) for i in range(n)]


def test_run_delivers_every_trial_in_order_and_returns_to_armed():
    board = Board()
    statuses, onsets = [], []
    runner = ProtocolRunner(
        board, on_status=statuses.append, on_trial=lambda t, s: onsets.append(s)
    )
    runner.arm()
    runner.start(plan(5), n_trials=5)
    final = runner.wait(5)
    assert final.phase == RunState.ARMED
    assert final.finish_reason == FinishReason.COMPLETED
    assert [p.amplitude_vpp for p in board.stimulated] == [2.0, 2.1, 2.2, 2.3, 2.4]
    assert onsets == [1000, 2000, 3000, 4000, 5000]
    phases = [s.phase for s in statuses]
    assert phases[:2] == [RunState.ARMED, RunState.RUNNING]
    assert phases[-2:] == [RunState.STOPPING, RunState.ARMED]


def test_cannot_start_without_arming():
    runner = ProtocolRunner(Board())
    with pytest.raises(RuntimeError, match="arm first"):
        runner.start(plan(1))


def test_cancel_acts_at_the_next_trial_boundary_not_mid_stimulus():
    board = Board()
    board.gate.clear()  # the first stimulus is "in progress"
    runner = ProtocolRunner(board)
    runner.arm()
    runner.start(plan(10))
    runner.cancel()
    board.gate.set()  # the stimulus in progress completes
    final = runner.wait(5)
    assert len(board.stimulated) == 1
    assert final.finish_reason == FinishReason.CANCELLED
    assert final.phase == RunState.ARMED


def test_pause_holds_trials_and_resume_continues():
    board = Board()
    runner = ProtocolRunner(board)
    runner.arm()
    runner.start(plan(3, isi_s=0.3))
    runner.set_paused(True)
    idle = threading.Event()
    for _ in range(200):
        if runner.status.phase == RunState.PAUSED:
            break
        idle.wait(0.01)
    assert runner.status.phase == RunState.PAUSED
    idle.wait(0.4)  # longer than the inter-stimulus interval: still held
    assert len(board.stimulated) <= 1
    runner.set_paused(False)
    assert runner.wait(5).finish_reason == FinishReason.COMPLETED
    assert len(board.stimulated) == 3


def test_emergency_stop_disarms_and_ends_idle():
    board = Board()
    runner = ProtocolRunner(board)
    runner.arm()
    runner.start(plan(50, isi_s=0.05))
    runner.emergency_stop()
    final = runner.wait(5)
    assert board.armed is False
    assert final.phase == RunState.IDLE
    assert final.finish_reason == FinishReason.EMERGENCY_STOP
    assert len(board.stimulated) < 50


def test_refused_command_faults_the_run_and_reset_returns_to_idle():
    board = Board(refuse_at=2)
    runner = ProtocolRunner(board)
    runner.arm()
    runner.start(plan(5))
    final = runner.wait(5)
    assert final.phase == RunState.FAULT
    assert "trial 2" in final.message and "NOT_ARMED" in final.message
    runner.reset_fault()
    assert runner.status.phase == RunState.IDLE


def test_closed_loop_chooser_is_asked_for_each_next_trial():
    board = Board()
    runner = ProtocolRunner(board)
    runner.arm()
    asked = []

    def chooser(n_done):
        asked.append(n_done)
        return None if n_done == 3 else T(n_done, StimPulse(3.0, 2e-3), 0.0)

    runner.start(chooser)
    assert runner.wait(5).finish_reason == FinishReason.COMPLETED
    assert asked == [0, 1, 2, 3]


def test_a_refused_stimulus_or_a_failing_chooser_faults_the_run_visibly():
    from rig.core.runner import ProtocolRunner, RunState

    class Refusing:
        def arm(self):
            pass

        def disarm(self):
            pass

        def stimulate(self, pulse):
            raise ValueError("amplitude_vpp = 6 is outside the calibrated range")

    class Trial:
        index, onset_s = 0, 0.0
        pulse = None

    runner = ProtocolRunner(Refusing())
    runner.arm()
    runner.start([Trial()])
    final = runner.wait(2)
    assert final.phase == RunState.FAULT
    assert "outside the calibrated range" in final.message

    runner.reset_fault()
    runner.arm()

    def chooser(n):
        raise RuntimeError("GP fit failed")

    runner.start(chooser)
    final = runner.wait(2)
    assert final.phase == RunState.FAULT
    assert final.message == "choosing trial 0: RuntimeError: GP fit failed"
