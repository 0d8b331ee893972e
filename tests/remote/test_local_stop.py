"""The local emergency stop always wins over remote commands.

The session and the server run here (the rig's machine); the client talks to
them over real ZeroMQ sockets. A "local" stop is ``session.emergency_stop()``
called on this side, as the GUI's Esc and ``neurorig serve``'s Ctrl-C do.
"""

from __future__ import annotations

import threading

import pytest

from rig.core.connect import open_rig
from rig.remote import RemoteError, connect
from rig.remote.server import RemoteServer


@pytest.fixture
def rig_and_client(tmp_path):
    session = open_rig("sim://?seed=2")
    session.start()
    server = RemoteServer(
        session,
        bind="127.0.0.1:0",
        token_file=tmp_path / "token",
        recordings_root=tmp_path / "runs",
    )
    server.start()
    client = connect(server.address, server.token)
    yield session, server, client
    client.close()
    server.stop()
    session.close()


def test_a_remote_client_cannot_release_a_local_emergency_stop(rig_and_client):
    session, _, remote = rig_and_client
    remote.arm()
    # the GUI's Esc runs on its own thread: not the server's
    pressed = threading.Thread(target=session.emergency_stop)
    pressed.start()
    pressed.join()
    status = remote.status()
    assert status["armed"] is False and status["emergency_latched"] is True
    assert status["emergency_stop_origin"] == "local"
    with pytest.raises(RemoteError) as refused:
        remote.reset()
    assert refused.value.kind == "LocalStopHolds"
    assert "only a local reset" in str(refused.value)
    with pytest.raises(RemoteError, match="emergency stop holds"):
        remote.arm()
    with pytest.raises(RemoteError, match="emergency stop holds"):
        remote.run_protocol("protocols/mapping.toml")
    assert session.emergency_latched  # still held
    session.reset_fault()  # the local reset
    remote.arm()
    assert remote.status()["armed"] is True


def test_a_local_stop_over_a_remote_one_still_wins(rig_and_client):
    session, _, remote = rig_and_client
    remote.arm()
    remote.emergency_stop()
    assert remote.status()["emergency_stop_origin"] == "remote"
    session.emergency_stop()  # pressed at the rig as well
    with pytest.raises(RemoteError, match="only a local reset"):
        remote.reset()
    session.reset_fault()
    # after the local reset, a new remote stop is the remote's to release
    remote.emergency_stop()
    remote.reset()
    assert remote.status()["emergency_latched"] is False


def test_the_server_stops_cleanly_and_removes_its_token_file(rig_and_client):
    session, server, remote = rig_and_client
    assert server.token_file.exists()
    server.stop()
    assert not server.token_file.exists()
    remote.timeout_s = 0.5
    with pytest.raises(RemoteError, match="no reply"):
        remote.status()
    server.stop()  # idempotent


def test_a_remote_stop_stays_remote_whatever_thread_reports_it(rig_and_client):
    # A run winding down reports its status from the runner's own thread after
    # a remote stop, repeating the stop's message: the stop is still the
    # remote's to release (the docs' remote session failed once in CI when the
    # origin was guessed from the reporting thread)
    session, _, remote = rig_and_client
    remote.arm()
    remote.emergency_stop()
    late = threading.Thread(target=lambda: session.runner._set(trial=1))
    late.start()
    late.join()
    assert remote.status()["emergency_stop_origin"] == "remote"
    remote.reset()
    assert remote.status()["emergency_latched"] is False
