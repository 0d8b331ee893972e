"""A real window on a real X server (Debian's Xvfb), driven by real key presses
(xdotool) as a scientist's keyboard would: ``neurorig gui --sim`` in its own
process, a short protocol run (F5), the emergency stop (Esc), a reset
(Ctrl+Shift+R), the screen grabbed, then Ctrl+Q. The session log says what the
rig did; the screenshot shows the window was drawn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")),
    reason="needs Debian's xvfb and xdotool (scripts/install-system-deps.sh)",
)

PROTOCOL = """format_version = 1
[protocol]
name = "xvfb-short"
seed = 3
[[block]]
amplitude_vpp = [3.0, 4.0, 5.0]
duration_ms = 3.0
repeats = 20
inter_stimulus_interval_s = 0.3
"""


def start_xvfb():
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1366x768x24",
         "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        display = f":{pipe.readline().strip()}"
    return server, display


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def log_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log"))


def test_the_gui_in_a_real_window_runs_stops_and_resets(tmp_path):
    server, display = start_xvfb()
    protocol = tmp_path / "short.toml"
    protocol.write_text(PROTOCOL)
    logs = tmp_path / "logs"
    env = {
        **os.environ, "DISPLAY": display, "NEURORIG_LOG_DIR": str(logs),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # fresh window settings
    }  # fmt: skip
    env.pop("QT_QPA_PLATFORM", None)  # the real X platform, not offscreen
    app = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "gui", "--sim", "--protocol", str(protocol)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def xdotool(*args: str) -> str:
        return subprocess.run(
            ["xdotool", *args], env=env, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        window = wait_for(
            lambda: xdotool("search", "--name", "^neurorig$").split("\n")[0],
            30, "the window",
        )  # fmt: skip
        wait_for(lambda: "connected: neurorig-sim" in log_text(logs), 30, "connect")
        time.sleep(1.0)  # streaming, the protocol loaded
        xdotool("windowfocus", "--sync", window)
        xdotool("key", "F5")
        wait_for(lambda: "xvfb-short: started" in log_text(logs), 10, "the run")
        time.sleep(1.5)  # a few stimuli delivered
        xdotool("key", "Escape")
        wait_for(lambda: "emergency stop: disarming" in log_text(logs), 5, "E-stop")
        wait_for(lambda: "emergency stop after" in log_text(logs), 5, "run ended")
        xdotool("key", "ctrl+shift+r")
        wait_for(lambda: "reset: emergency stop" in log_text(logs), 5, "reset")
        time.sleep(0.5)
        from PIL import ImageGrab

        shot = ImageGrab.grab(xdisplay=display)
        shot.save(tmp_path / "screen.png")
        pixels = np.asarray(shot.convert("L"), dtype=float)
        assert shot.size == (1366, 768)
        assert pixels.std() > 20  # a drawn window, not a blank screen
        xdotool("key", "ctrl+q")
        assert app.wait(timeout=20) == 0
    finally:
        if app.poll() is None:
            app.kill()
        output = app.communicate(timeout=10)[0]
        server.terminate()
        server.wait(timeout=10)
    assert "Traceback" not in output, output
