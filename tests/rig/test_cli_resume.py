"""`neurorig run --resume RECORDING`: a run killed part-way is finished in a new
recording linked to the first; the two together deliver every trial once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import rig.recording
from tests._cli import ROOT, neurorig

PROTOCOL = """format_version = 1
[protocol]
name = "resumable"
seed = 5
[[block]]
amplitude_vpp = [3.0, 4.0, 5.0]
duration_ms = 3.0
repeats = 2
order = "random"
inter_stimulus_interval_s = 0.3
"""


def trials_in(folder: Path) -> list[int]:
    events = folder / "events.jsonl"
    text = events.read_text() if events.exists() else ""
    return [k for k, line in enumerate(text.splitlines()) if '"trial"' in line]


def killed_run(protocol: Path, out: Path) -> Path:
    """A recording of ``protocol`` whose process was killed after 2 trials."""
    command = [sys.executable, "-m", "rig.cli", "run", str(protocol), "--sim"]
    child = subprocess.Popen(
        [*command, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list(out.glob("*/events.jsonl"))
            if found and len(trials_in(found[0].parent)) >= 2:
                os.kill(child.pid, signal.SIGKILL)
                return found[0].parent
            time.sleep(0.05)
        raise AssertionError("the first run never delivered 2 trials")
    finally:
        child.kill()
        child.wait(10)


def test_a_killed_run_is_finished_by_resume(tmp_path):
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL)
    first = killed_run(protocol, tmp_path / "first")
    before = [e["index"] for e in rig.recording.open(first).events_of("trial")]
    assert 2 <= len(before) < 6
    out = neurorig(
        "run", str(protocol), "--sim", "--resume", str(first), "--out",
        str(tmp_path / "second"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"resuming {first} at trial {len(before)} of 6" in out.stderr
    second = Path(out.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    rec = rig.recording.open(second)
    after = [e["index"] for e in rec.events_of("trial")]
    assert before + after == list(range(6))  # every trial once, in plan order
    assert rec.metadata["resumed_from"] == {
        "recording": str(first),
        "first_trial": len(before),
    }
    # The same trial gets the same parameters in both recordings' plan.
    assert rec.status == "completed"


def test_resume_refuses_another_protocol_and_a_finished_recording(tmp_path):
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL)
    done = neurorig("run", str(protocol), "--sim", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    folder = done.stdout.strip().splitlines()[-1].removeprefix("recording: ")
    again = neurorig("run", str(protocol), "--sim", "--resume", folder)
    assert again.returncode == 2
    assert "all 6 trials were delivered; nothing to resume" in again.stderr
    other = tmp_path / "p.toml"
    other.write_text(PROTOCOL.replace("seed = 5", "seed = 6"))
    changed = neurorig("run", str(other), "--sim", "--resume", folder)
    assert changed.returncode == 2
    assert "ran a different version of p.toml" in changed.stderr
    assert "Traceback" not in changed.stderr + again.stderr
