"""``sim://?process=own`` (every ``--sim`` of the command line and the GUI): the
simulated board and camera run in a process of their own, reached only by
their pseudo-terminal and camera socket, as hardware is; they go with the
session, write their ground truth where asked, and never outlive the host,
even one killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rig.core.connect import SimulatorProcess, open_rig
from rig.core.stream_camera import StreamCamera

ROOT = Path(__file__).resolve().parents[3]


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def simulators_of(parent: int) -> list[int]:
    """Running ``neurorig sim`` processes started by ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == parent and b"sim" in command and b"rig.cli" in command:
            found.append(int(entry.name))
    return [pid for pid in found if running(pid)]


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_session_on_the_simulator_in_its_own_process(tmp_path):
    truth = tmp_path / "ground_truth.json"
    session = open_rig(
        "sim://?seed=5&process=own&channels=2",
        camera="sim",
        ground_truth_to=lambda: truth,
    )
    [child] = simulators_of(os.getpid())
    socket_path = Path(session.camera.source)
    try:
        assert session.n_channels == 2 and session.rig.simulated
        assert session.device.link.port.port.startswith("/dev/pts/")
        assert isinstance(session.camera, StreamCamera)  # its video, over a socket
        session.start()
        time.sleep(1.0)
        assert session.acquisition.ring.end > 0.5 * 30_000
        assert session.camera.frames_read > 30
    finally:
        session.close()
    assert wait_gone(child, 1.0)  # closing the session stopped it
    assert not socket_path.parent.exists()  # and cleared its socket
    recorded = json.loads(truth.read_text())  # written by the child as it ended
    assert recorded["seed"] == 5
    with np.load(tmp_path / "ground_truth_segments.npz") as segments:
        assert len(segments["sample"]) > 30  # the frames its camera rendered


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://?process=elsewhere", "process='elsewhere': allowed host"),
        ("sim://?process=own&rate=7", "argument --rate: invalid choice: 7"),
        ("sim://?process=own&speed=3", "unrecognized arguments: --speed 3"),
    ],
)
def test_bad_options_are_refused_with_the_simulators_own_line(url, message):
    with pytest.raises(ValueError, match=message):
        open_rig(url)


def test_the_simulator_ends_when_its_host_is_killed(tmp_path):
    children: list[int] = []
    host = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time\n"
            "from rig.core.connect import open_rig\n"
            "s = open_rig('sim://?seed=1&process=own', camera='sim')\n"
            "s.start()\n"
            "print('started', flush=True)\n"
            "time.sleep(600)\n",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert host.stdout.readline() == "started\n"
        children = simulators_of(host.pid)
        assert len(children) == 1
        os.kill(host.pid, signal.SIGKILL)
        host.wait(10)
        assert wait_gone(children[0]), "the simulator outlived its host"
    finally:
        host.kill()
        host.wait()
        host.stdout.close()
        for child in children:  # should it have outlived the host
            if running(child):
                os.kill(child, signal.SIGKILL)


def test_ctrl_c_at_the_terminal_reaches_the_host_not_the_board():
    with SimulatorProcess({"seed": "1"}) as child:
        # The terminal's Ctrl-C goes to its foreground process group: the
        # child is in a session of its own, so it is not in that group.
        assert os.getpgid(child.pid) != os.getpgid(0)
        os.killpg(os.getpgid(child.pid), signal.SIGINT)  # even if it were
        time.sleep(0.5)
        assert running(child.pid)
    assert wait_gone(child.pid, 1.0)
