"""The GUI hosts the remote API: a client in another process arms the rig and
the window shows it; Esc in the window holds against that client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyqtgraph.Qt import QtCore

from firmware_bridge.protocol import StatusFlag
from rig.gui.app import default_session_factory
from rig.gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
CLIENT = """
import json, sys
from rig.remote import connect, RemoteError
with connect(sys.argv[1], token_file=sys.argv[2]) as rig:
    out = {}
    if sys.argv[3] == "arm":
        rig.arm()
        out["status"] = rig.status()
    else:
        try:
            rig.reset()
        except RemoteError as exc:
            out["reset"] = [exc.kind, str(exc)]
        try:
            rig.arm()
        except RemoteError as exc:
            out["arm"] = [exc.kind, str(exc)]
    print(json.dumps(out))
"""


def run_client(address: str, token_file: Path, action: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, address, str(token_file), action],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # the token file's home
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(
        session_factory=default_session_factory,
        settings=settings,
        remote_bind="127.0.0.1:0",
        remote=True,
    )
    qtbot.addWidget(win)
    win.show()
    win.connect_to("sim://?seed=3")
    qtbot.waitUntil(lambda: win.session is not None, timeout=20_000)
    yield win
    win.close()


def test_a_client_in_another_process_drives_the_rig_the_window_shows(qtbot, window):
    server = window.remote.server
    assert server is not None and server.token_file.exists()
    assert oct(server.token_file.stat().st_mode & 0o777) == "0o600"
    out = run_client(server.address, server.token_file, "arm")
    assert out["status"]["armed"] is True
    assert window.session.device.status().flags & StatusFlag.ARMED
    # the window learns of it through the session's events, as for its own arm
    qtbot.waitUntil(
        lambda: window.stimulation.arm_button.text() == "Disarm", timeout=5000
    )
    window.remote.refresh()
    assert "1 clients" in window.remote.label.text()

    # Esc at the rig: the remote client can neither release it nor re-arm
    qtbot.keyClick(window.stimulation, QtCore.Qt.Key_Escape)
    qtbot.waitUntil(lambda: window.session.emergency_latched, timeout=2000)
    out = run_client(server.address, server.token_file, "release")
    assert out["reset"][0] == "LocalStopHolds"
    assert out["arm"][0] == "EmergencyStopHeld"
    assert not window.session.device.status().flags & StatusFlag.ARMED


def test_switching_remote_control_off_stops_the_server(qtbot, window):
    server = window.remote.server
    token_file = server.token_file
    window.remote.action.setChecked(False)
    assert window.remote.server is None
    assert not token_file.exists()
    assert window.remote.label.text() == "remote: off"
    window.remote.action.setChecked(True)
    assert window.remote.server is not None
    window.disconnect()
    assert window.remote.server is None
