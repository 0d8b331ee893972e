"""Shared fixtures. Qt runs offscreen; `--port PATH` adds hardware-in-loop runs."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        action="store",
        default=None,
        help="serial port of a real board; enables tests marked 'hardware'",
    )
