"""Shared fixtures. Qt runs offscreen; `--port PATH` adds hardware-in-loop runs."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Session logs of the commands the tests run go to a throw-away folder, not
# the user's ~/.local/state (rig/cli/_log.py).
os.environ.setdefault(
    "NEURORIG_LOG_DIR", tempfile.mkdtemp(prefix="neurorig-test-logs-")
)


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port of a real board; enables tests marked 'hardware'",
    )
