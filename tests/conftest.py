"""Shared fixtures. Qt runs offscreen; `--port PATH` adds hardware-in-loop runs.

``board_port`` is the port of a board, opened by the tests exactly as hardware
is (``Device.open(port)``, ``rig.open_rig(port)``). It is parametrised over the
backends: ``sim``, a fresh simulated rig on a pseudo-terminal, always; and
``hardware``, the board at ``--port PATH``, only when that option is given (it
is then marked ``hardware``; ``-m hardware`` runs the board alone). Without
``--port`` the hardware runs are not generated at all rather than skipped one by
one: the report header says how to add them.
"""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Session logs of the commands the tests run go to a throw-away folder, not
# the user's ~/.local/state (rig/cli/_log.py).
os.environ.setdefault(
    "NEURORIG_LOG_DIR", tempfile.mkdtemp(prefix="neurorig-test-logs-")
)

SIM_SEED = 1


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port of a real board: the tests taking 'board_port' run on "
        "it too (marked 'hardware'), e.g. --port /dev/ttyACM0",
    )


def pytest_report_header(config):
    port = config.getoption("--port")
    if port:
        return f"board backends: sim, hardware at {port}"
    return "board backends: sim (add --port PATH to run tests/behaviour on a board)"


def pytest_generate_tests(metafunc):
    if "board_port" not in metafunc.fixturenames:
        return
    backends = [pytest.param("sim", id="sim")]
    if metafunc.config.getoption("--port"):
        backends.append(
            pytest.param("hardware", id="hardware", marks=pytest.mark.hardware)
        )
    metafunc.parametrize("board_port", backends, indirect=True)


@pytest.fixture
def board_port(request):
    """The port of a board in a known state: idle, disarmed, no fault latched.

    ``sim``: a fresh simulated rig (seed ``SIM_SEED``), closed after the test.
    ``hardware``: the ``--port`` board, brought back to that state first, since
    a test before may have left it faulted, triggering or injecting.
    """
    if request.param == "hardware":
        port = request.config.getoption("--port")
        _reset_board(port)
        yield port
        return
    from firmware_bridge.sim import SimulatedRig

    with SimulatedRig(seed=SIM_SEED, keep_ground_truth=False) as simulator:
        yield simulator.port


def _reset_board(port: str) -> None:
    """What ``neurorig reset`` does, and the outputs a test may have left on."""
    from firmware_bridge.device import Device
    from firmware_bridge.errors import CommandRefused

    with Device.open(port, timeout_s=2.0, heartbeat=False) as device:
        for step in (device.stop_stream, device.disarm, device.reset_fault):
            try:
                step()
            except CommandRefused as exc:  # not streaming: nothing to stop
                if exc.error != "INVALID_STATE":
                    raise
        device.set_camera_trigger(0)
        device.test_signal(enable=False)
