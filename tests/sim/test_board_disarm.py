"""DISARM and host loss mid-pulse: the pulse being delivered stays charge-balanced.

A pulse is one full sine cycle; its only charge-neutral points are its start and
its end. The board lets the running pulse finish both phases and drops the rest
of a train (docs/protocol.md §5).
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.protocol import (
    Arm,
    Disarm,
    Fault,
    FaultCode,
    GetStatus,
    StatusFlag,
    StimDelivered,
    Stimulate,
    decode_frame,
    encode_message,
    parse_payload,
)
from firmware_bridge.sim.board import SimBoard
from firmware_bridge.sim.worm import WormModel

FS = 30_000


def messages(frames) -> list:
    out = []
    for *_, raw in frames:
        msg_type, _, payload = decode_frame(raw[:-1])
        out.append(parse_payload(msg_type, payload))
    return out


def net_and_phase_charge(pulse) -> tuple[float, float]:
    """Sum of the pulse's samples as delivered, and of one full phase (V·samples)."""
    onset, end, amp_vpp, duration_s, polarity, _gain = pulse
    k = np.arange(int(onset), int(np.ceil(end)))
    sign = -1.0 if polarity else 1.0
    wave = sign * amp_vpp / 2 * np.sin(2 * np.pi * (k - onset) / FS / duration_s)
    phase = (
        amp_vpp
        / 2
        * np.sin(np.pi * np.arange(round(duration_s * FS / 2)) / (duration_s * FS / 2))
    )
    return float(wave.sum()), float(phase.sum())


def armed_board() -> SimBoard:
    board = SimBoard(WormModel(seed=4))
    board.receive(encode_message(Arm(), 0))
    return board


def test_disarm_in_the_first_phase_finishes_the_pulse_and_drops_the_train():
    board = armed_board()
    # 6 ms pulses (180 samples), a train of three at 10 Hz.
    stim = Stimulate(4000, 6000, 0, 1, 0, 3, 100_000)
    board.receive(encode_message(stim, 1))
    seen = messages(board.advance(31))  # 30 samples into the first phase
    [first] = [m for m in seen if isinstance(m, StimDelivered)]
    board.receive(encode_message(Disarm(), 2))
    [status] = messages(board.receive(encode_message(GetStatus(), 3)))
    assert not status.flags & StatusFlag.ARMED
    assert status.flags & StatusFlag.STIMULATING  # finishing the pulse
    seen = messages(board.advance(FS))  # one second: the rest of the train is due
    assert not [m for m in seen if isinstance(m, StimDelivered)]
    [status] = messages(board.receive(encode_message(GetStatus(), 4)))
    assert not status.flags & StatusFlag.STIMULATING
    [pulse] = board.model._pulses
    assert pulse[0] == first.sample_index and pulse[1] - pulse[0] == 180
    net, phase = net_and_phase_charge(pulse)
    assert abs(net) < 1e-9 * phase


def test_host_loss_in_the_first_phase_finishes_the_pulse():
    board = armed_board()
    # 10 ms pulses (300 samples) every 1480 samples: pulse 6 starts at
    # onset + 8880 and the watchdog fires 120 samples into it (first phase).
    stim = Stimulate(3000, 10_000, 0, 1, 0, 100, 49_333)
    board.receive(encode_message(stim, 1))
    seen = []
    for _ in range(FS // 2):
        seen += messages(board.advance(1))
    [fault] = [m for m in seen if isinstance(m, Fault)]
    assert fault.code == FaultCode.HOST_LOSS
    onsets = [m.sample_index for m in seen if isinstance(m, StimDelivered)]
    assert len(onsets) == 7 and onsets[-1] < fault.sample_index < onsets[-1] + 150
    last = board.model._pulses[-1]
    assert last[0] == onsets[-1] and last[1] - last[0] == 300
    net, phase = net_and_phase_charge(last)
    assert abs(net) < 1e-9 * phase


def test_a_starved_simulator_does_not_mistake_its_own_stall_for_host_loss():
    from firmware_bridge.protocol import Heartbeat

    # The host sent heartbeats all along, but the simulator did not run for
    # 0.4 s: it reads them at its stale clock, then catches up in one step.
    starved, told = armed_board(), armed_board()
    for board in (starved, told):
        board.advance(FS // 10)
        board.receive(encode_message(Heartbeat(), 2))
    told.note_host_alive(told.sample + 4 * FS // 10)  # what SimulatedRig does
    lost = [m for m in messages(starved.advance(4 * FS // 10)) if isinstance(m, Fault)]
    kept = [m for m in messages(told.advance(4 * FS // 10)) if isinstance(m, Fault)]
    assert [f.code for f in lost] == [FaultCode.HOST_LOSS]  # the failure it fixes
    assert kept == [] and told.armed
