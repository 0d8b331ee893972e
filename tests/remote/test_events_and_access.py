"""Every low-rate RigEvents event reaches a subscriber as JSON; the bind and
token rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rig.core.connect import open_rig
from rig.core.runner import FinishReason, RunnerStatus, RunState
from rig.protocols import load_protocol
from rig.remote import connect
from rig.remote._access import BindRefused, TokenCheck, parse_bind
from rig.remote.messages import to_jsonable
from rig.remote.server import RemoteServer


@pytest.fixture
def served_here(tmp_path):
    session = open_rig("sim://?seed=4")
    session.start()
    server = RemoteServer(session, bind="127.0.0.1:0", token_file=tmp_path / "t")
    server.start()
    client = connect(server.address, server.token)
    yield session, client
    client.close()
    server.stop()
    session.close()


def test_every_low_rate_event_is_published_as_json(served_here):
    session, client = served_here
    trial = load_protocol("protocols/mapping.toml").expand().trials[0]
    status = RunnerStatus(RunState.ARMED, 2, 5, FinishReason.COMPLETED, "done")
    # One plausible emission of each signal, with the types _events.py names.
    args = {
        "stim_delivered": (120, {"amplitude_vpp": 4.0, "duration_s": 3e-3}),
        "run_state_changed": (status,),
        "response_measured": (3, {"latency_s": np.array([1e-3, np.nan])}),
        "motion_measured": (3, {"peak_displacement_mm": np.float32(0.5)}),
        "fault_raised": ("HOST_LOSS",),
        "error_occurred": (OSError(28, "No space left on device"),),
        "recording_changed": (None,),
        "armed_changed": (True,),
        "optimiser_updated": ({"proposal": (4.0, 3e-3, 0)},),
        "trial_delivered": (trial, 480),
    }
    signals = session.events.all()
    assert set(args) <= {s.name for s in signals}
    for signal in signals:  # an event added since: nulls of its arity
        args.setdefault(signal.name, (None,) * len(signal.arg_names))
    with client.subscribe(list(args)) as sub:
        for signal in signals:
            signal.emit(*args[signal.name])
        received = {}
        while len(received) < len(args):
            event = sub.next(timeout_s=5)
            received.setdefault(event.name, event.args)  # the rig's own come too
    assert received["run_state_changed"]["status"] == {
        "phase": "armed", "trial": 2, "n_trials": 5,
        "finish_reason": "completed", "message": "done",
    }  # fmt: skip
    assert received["response_measured"]["result"]["latency_s"] == [1e-3, None]
    assert received["error_occurred"]["error"]["type"] == "OSError"
    assert received["trial_delivered"]["trial"]["pulse"]["amplitude_vpp"] == (
        trial.pulse.amplitude_vpp
    )
    assert received["trial_delivered"]["onset_sample"] == 480


def test_to_jsonable_gives_strict_json():
    value = {"a": np.arange(3), "b": math.inf, 1: {np.int64(2)}, "c": RunState.FAULT}
    text = json.dumps(to_jsonable(value), allow_nan=False)
    assert json.loads(text) == {"a": [0, 1, 2], "b": None, "1": [2], "c": "fault"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5555", ("127.0.0.1", 5555)),
        ("127.3.4.5:1", ("127.3.4.5", 1)),
        ("[::1]:5555", ("::1", 5555)),
        ("5555", ("127.0.0.1", 5555)),
        ("localhost:0", ("127.0.0.1", 0)),
    ],
)
def test_loopback_addresses_are_accepted(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize(
    "text", ["0.0.0.0:5555", "*:5555", "192.168.1.20:5555", "[::]:5555", "10.0.0.1:1"]
)
def test_other_addresses_need_allow_remote(text):
    with pytest.raises(BindRefused, match="--allow-remote"):
        parse_bind(text)
    assert parse_bind(text, allow_remote=True)[1] == int(text.rsplit(":", 1)[1])


@pytest.mark.parametrize("text", ["example.org:5555", "127.0.0.1:99999", ":"])
def test_a_malformed_address_is_one_line(text):
    with pytest.raises(BindRefused) as refused:
        parse_bind(text)
    assert "\n" not in str(refused.value)


def test_the_token_check_passes_only_plain_with_the_token():
    check = TokenCheck("s3cret")
    head = [b"1.0", b"7", b"neurorig", b"127.0.0.1", b""]
    assert check.reply([*head, b"PLAIN", b"neurorig", b"s3cret"])[2] == b"200"
    assert check.reply([*head, b"PLAIN", b"neurorig", b"s3cres"])[2] == b"400"
    assert check.reply([*head, b"PLAIN", b"neurorig", b""])[2] == b"400"
    assert check.reply([*head, b"NULL"])[2] == b"400"
    assert check.reply([*head, b"CURVE", b"k" * 32])[2] == b"400"
    assert check.reply([b"junk"])[2] == b"500"
    assert check.refused == 4
