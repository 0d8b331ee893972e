"""Hostile messages from a client holding the token: each gets one clear error
and the server (``neurorig serve --sim``, its own process) carries on."""

from __future__ import annotations

import json

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.remote.messages import MAX_REQUEST_BYTES


@pytest.fixture(scope="module")
def raw(served):
    """A plain ZeroMQ DEALER with the token: sends whatever bytes it is given."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.plain_username = b"neurorig"
    sock.plain_password = served.token.encode()
    sock.connect(served.address)
    yield sock
    ctx.destroy(linger=0)


def exchange(sock, *frames: bytes, again_ms: int = 200) -> list[dict]:
    """Send one message; return every reply that comes within a moment."""
    sock.send_multipart([b"", *frames])
    replies = []
    wait = 5000
    while sock.poll(wait):
        replies.append(json.loads(sock.recv_multipart()[-1]))
        wait = again_ms  # a second reply would come at once
    return replies


def one_error(sock, *frames: bytes) -> dict:
    replies = exchange(sock, *frames)
    assert len(replies) == 1, replies
    (reply,) = replies
    assert reply["ok"] is False
    message = reply["error"]["message"]
    assert "\n" not in message and "Traceback" not in message
    return reply["error"]


def still_serving(sock) -> None:
    replies = exchange(sock, b'{"id": "alive", "command": "status"}')
    assert len(replies) == 1 and replies[0]["ok"], replies
    assert replies[0]["id"] == "alive"


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8 JSON"),
        (b"", "not UTF-8 JSON"),
        (b"[1, 2, 3]", "request is a JSON list"),
        (b'"arm"', "request is a JSON str"),
        (b'{"id": 1}', "unknown command"),
        (b'{"id": 1, "command": "self_destruct"}', "unknown command 'self_destruct'"),
        (b'{"id": 1, "command": 42}', "unknown command 'int'"),
        (b'{"id": 1, "command": "arm", "extra": 1}', "unknown request key 'extra'"),
        (b'{"id": 1, "command": "arm", "args": []}', "args must be a JSON object"),
        (b'{"command": "stimulate", "args": {"amplitude_vpp": "4"}}', "must be a number"),
        (b'{"command": "stimulate", "args": {"amplitude_vpp": NaN, "duration_s": 0.003}}',
         "finite"),
        (b'{"command": "stimulate", "args": {"duration_s": 0.003}}',
         "missing argument 'amplitude_vpp'"),
        (b'{"command": "stimulate", "args": {"amp": 4}}', "unknown argument 'amp'"),
        (b'{"command": "stimulate", "args": {"amplitude_vpp": 4, "duration_s": 0.003, '
         b'"polarity": "sideways"}}', "allowed: positive_first, negative_first"),
        (b'{"command": "note", "args": {"text": "' + b"x" * 20_000 + b'"}}',
         "allowed up to 10000"),
        (b"[" * 100_000 + b"]" * 100_000, "too large"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"command": "run_protocol", "args": {"protocol_toml": "[[[["}}', "remote.toml"),
    ],
)  # fmt: skip
def test_a_bad_request_gets_one_clear_error(raw, payload, says):
    error = one_error(raw, payload)
    assert says in error["message"], error
    still_serving(raw)


def test_a_huge_payload_is_refused_with_its_size(raw):
    error = one_error(raw, b'{"command": "note", "args": {"text": "' + b"y" * 300_000)
    assert error["type"] == "BadRequest"
    assert f"allowed up to {MAX_REQUEST_BYTES} bytes" in error["message"]
    still_serving(raw)


def test_a_message_beyond_a_megabyte_is_dropped_with_its_connection(served, raw):
    # ZeroMQ refuses to read it at all (MAXMSGSIZE): that client is cut off,
    # the server and every other client go on.
    ctx = zmq.Context()
    try:
        bulky = ctx.socket(zmq.DEALER)
        bulky.linger = 0
        bulky.plain_username = b"neurorig"
        bulky.plain_password = served.token.encode()
        bulky.connect(served.address)
        bulky.send_multipart([b"", b"z" * (4 * 1024 * 1024)])
        assert bulky.poll(2000) == 0
    finally:
        ctx.destroy(linger=0)
    still_serving(raw)


def test_several_frames_are_one_error(raw):
    error = one_error(raw, b'{"command": "status"}', b"second frame")
    assert "one frame" in error["message"]
    still_serving(raw)


def test_the_request_id_is_echoed_even_on_a_refusal(raw):
    replies = exchange(raw, b'{"id": "abc", "command": "fly"}')
    assert replies[0]["id"] == "abc" and replies[0]["ok"] is False


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Commands whose effect on the rig is harmless to repeat at random.
harmless = st.sampled_from(["hello", "status", "disarm", "note", "cancel", "fly", ""])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    message=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"id": json_values, "command": harmless, "args": json_values}
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_message_gets_exactly_one_reply_and_the_server_goes_on(raw, message):
    replies = exchange(raw, message, again_ms=20)
    assert len(replies) == 1, (message, replies)
    reply = replies[0]
    assert set(reply) == {"id", "ok", "result"} or set(reply) == {"id", "ok", "error"}
    if not reply["ok"]:
        assert (
            reply["error"]["message"] and "Traceback" not in reply["error"]["message"]
        )
