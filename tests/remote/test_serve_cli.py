"""``neurorig serve`` as a user runs it: refusals in one line, Ctrl-C disarms."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from rig.remote import connect
from tests._cli import neurorig
from tests.remote._served import serve_sim


def test_a_non_loopback_address_is_refused_before_the_board_is_opened():
    out = neurorig("serve", "--sim", "--bind", "0.0.0.0:5555", timeout=60)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("neurorig: error: --bind 0.0.0.0:5555 is not a loopback")
    assert "--allow-remote" in last
    assert "Traceback" not in out.stderr


def test_a_bad_port_is_one_line():
    out = neurorig("serve", "--sim", "--bind", "127.0.0.1:http", timeout=60)
    assert out.returncode == 2
    assert "port 'http' is not a whole number" in out.stderr.splitlines()[-1]


def test_ctrl_c_disarms_first_then_stops_and_removes_the_token(tmp_path):
    with serve_sim(tmp_path) as served:
        with connect(served.address, served.token) as remote:
            remote.arm()
            folder = remote.start_recording()
            assert remote.status()["armed"] is True
            served.process.send_signal(signal.SIGINT)
            assert served.process.wait(30) == 0
        output = served.process.stdout.read()
    assert "emergency stop: board disarmed" in output
    assert not served.token_file.exists()
    # The stop came before the session closed: it is the recording's outcome,
    # and the recording holds it.
    recording = served.out / Path(folder).name
    assert json.loads((recording / "metadata.json").read_text())["status"] == (
        "emergency_stop"
    )
    assert '"emergency_stop"' in (recording / "events.jsonl").read_text()


def test_sigterm_ends_like_ctrl_c(tmp_path):
    with serve_sim(tmp_path) as served:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0
        assert "emergency stop" in served.process.stdout.read()
    assert not served.token_file.exists()


def test_the_gui_refuses_a_non_loopback_remote_address_in_the_terminal():
    out = neurorig("gui", "--sim", "--remote", "0.0.0.0:5555", timeout=60)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("neurorig: error: --remote 0.0.0.0:5555 is not a loopback")
