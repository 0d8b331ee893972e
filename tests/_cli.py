"""Running the ``neurorig`` command line as a user would, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A two-stimulus protocol: a short real run.
SHORT = """format_version = 1
[protocol]
name = "short"
seed = 1
[[block]]
amplitude_vpp = [3.0, 5.0]
duration_ms = 3.0
inter_stimulus_interval_s = 0.4
"""


def neurorig(*args, timeout=120, env=None):
    """``python -m rig.cli ARGS`` from the repository root; output captured;
    ``env``: environment variables set for it on top of this process's."""
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )
