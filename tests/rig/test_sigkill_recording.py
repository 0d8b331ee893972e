"""A recording process killed with SIGKILL mid-run (`neurorig run --sim`: the
simulated board and camera in a process of their own, which ends with it): the
reopened recording says it crashed, keeps its frame table up to the last
second or so without naming a frame the video does not hold, keeps every
delivered stimulus's request, and `neurorig analyze` aligns its frames by the
LED code from what is on disk and measures motion from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import rig.recording
from rig.recording._video import count_video_frames

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = """format_version = 1
[protocol]
name = "killed"
seed = 4
[[block]]
amplitude_vpp = [4.0, 5.0]
duration_ms = 3.0
repeats = 10
inter_stimulus_interval_s = 0.5
"""


def delivered_so_far(folder: Path) -> int:
    events = folder / "events.jsonl"
    if not events.exists():
        return 0
    return events.read_text().count('"stim_delivered"')


def test_a_killed_run_keeps_its_frame_table_and_its_motion(tmp_path):
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL)
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "rig.cli", "run", str(protocol), "--sim"]
    command += ["--camera", "sim", "--out", str(out)]
    child = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        folder = None
        while time.monotonic() < deadline:
            found = list(out.glob("*/metadata.json")) if out.exists() else []
            folder = found[0].parent if found else None
            if folder is not None and delivered_so_far(folder) >= 6:
                break
            time.sleep(0.1)
        assert folder is not None and delivered_so_far(folder) >= 6
        time.sleep(1.7)  # settled rows of the frames around the last stimuli
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    rec = rig.recording.open(folder)
    assert rec.status == "crashed"
    assert len(rec.frame_times) <= count_video_frames(folder / "video.mkv")
    stamped = rec.frame_samples[rec.frame_samples >= 0]
    assert len(stamped) > len(rec.frame_times) - 3 * 60  # all but the last ~2 s
    assert np.all(np.diff(stamped) > 0)
    delivered = rec.events_of("stim_delivered")
    requested = rec.events_of("stim_requested")
    assert len(requested) >= len(delivered) >= 6
    analyze = [sys.executable, "-m", "rig.cli", "analyze", str(folder), "--quiet"]
    analyzed = subprocess.run(
        [*analyze, "--json", str(tmp_path / "r.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["motion"]["tracked"] is True
    # The frames were aligned by the LED code from what is on disk (the
    # recording never closed to do it), not taken on arrival times' word.
    alignment = results["motion"]["alignment"]
    assert alignment["proven"] is True, alignment
    # All but frames whose trigger events never reached the disk (the last
    # moments before the kill) and those before the code began.
    assert alignment["n_proven"] >= 0.5 * len(rec.frame_times)
    twitches = [s["peak_displacement_mm"] for s in results["stimuli"]]
    assert sum(t is not None and t > 0.3 for t in twitches) >= 3
