"""Targeted faults of the simulated rig: one named frame each (no I/O)."""

from __future__ import annotations

import pytest

from firmware_bridge.protocol import (
    Ack,
    MsgType,
    Status,
    StimDelivered,
    Stimulate,
    StopStream,
    encode_message,
)
from firmware_bridge.sim import FaultInjector, FaultPlan
from firmware_bridge.sim.cli import build_parser, plan_from_args
from firmware_bridge.sim.fault_plan import frame_label


def test_frame_labels_name_the_command_an_ack_answers():
    ack = encode_message(Ack(MsgType.STIMULATE, 3, 100), 7)
    assert frame_label(ack) == "ACK:STIMULATE"
    assert frame_label(encode_message(Status(1, 0, 0, 5, 30_000, 15, 1000, 0), 0)) == (
        "STATUS"
    )
    assert frame_label(ack[:5] + b"\x00") is None  # does not decode


def test_damage_frames_hits_exactly_the_nth_frame_of_its_kind():
    injector = FaultInjector(FaultPlan(damage_frames=(("ACK:ARM", 1), ("ACK", 0))))
    acks = [
        encode_message(Ack(t, i, 0), i)
        for i, t in enumerate([MsgType.HEARTBEAT, MsgType.ARM, MsgType.ARM])
    ]
    event = encode_message(StimDelivered(1, 2, 0, 3000, 2990, 3000, 0, 1, 0), 3)
    out = [injector.apply(frame) for frame in [*acks, event]]
    assert [damaged for _, damaged in out] == [True, False, True, False]
    assert [frame_label(b) for b, _ in out] == [None, "ACK:ARM", None, "STIM_DELIVERED"]
    assert injector.frames_damaged == 2


def test_lose_commands_drops_the_nth_host_frame_whatever_the_read_split():
    injector = FaultInjector(FaultPlan(lose_commands=(("STIMULATE", 0),)))
    stim = encode_message(Stimulate(3000, 3000, 0, 1, 0, 1, 0), 4)
    stop = encode_message(StopStream(), 5)
    wire = stim + stop + stim
    got = injector.from_host(wire[:3]) + injector.from_host(wire[3:])
    assert got == stop + stim
    assert injector.commands_lost == 1


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"damage_frames": (("HELLO", 0),)}, "unknown frame kind 'HELLO'"),
        ({"damage_frames": (("STATUS:ARM", 0),)}, "unknown frame kind"),
        ({"lose_commands": (("ACK", 0),)}, "unknown frame kind 'ACK'"),
        ({"stall_after": (("STIMULATE", 9.0),)}, "allowed durations 0.05–5 s"),
    ],
)
def test_targeted_faults_name_what_is_allowed(fields, match):
    with pytest.raises(ValueError, match=match):
        FaultPlan(**fields)


def test_targeted_faults_are_options_of_neurorig_sim():
    options = "--damage ack:stimulate:0 --lose STIMULATE:1 --stall-after STIMULATE:2.5"
    args = build_parser().parse_args(options.split())
    plan = plan_from_args(args)
    assert plan.damage_frames == (("ACK:STIMULATE", 0),)
    assert plan.lose_commands == (("STIMULATE", 1),)
    assert plan.stall_after == (("STIMULATE", 2.5),)
