"""``neurorig analyze`` of a 1-minute recording with video: saved tracking vs re-tracking.

One recording made by ``neurorig run --sim --camera sim`` (60 stimuli, 1 s
apart, 640×480 at 60 fps, lossless FFV1; quick: 15 stimuli), then analysed in
this process as ``neurorig analyze`` does (``load_recording`` + ``analyse``),
warmed up first (Numba kernels loaded); the analysis from saved tracking
best of 5 (it takes ~0.1 s, so a moment's load on the machine moves one run
by half), the re-tracking one run:

- ``analyze_saved_tracking_s``: motion from the tracking saved while recording
  (``tracking.jsonl``; the video is not opened);
- ``analyze_retrack_s``: ``--retrack``: every frame decoded and tracked again;
- ``analyze_saved_tracking_speedup``: their ratio (target ≥ 100);
- ``motion_saved_tracking_s`` / ``motion_retrack_s``: the motion part alone
  (band positions for every frame: read from the file, or decoded and tracked);
- ``recording_mb_per_min`` and ``tracking_jsonl_mb_per_min``: the recording
  folder and its saved tracking.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _record(root: Path, n_stimuli: int) -> Path:
    protocol = root / "minute.toml"
    protocol.write_text(
        "format_version = 1\n[protocol]\nname = 'minute'\nseed = 1\n[[block]]\n"
        "amplitude_vpp = [3.0, 4.0, 5.0]\nduration_ms = [3.0, 5.0]\n"
        f"repeats = {n_stimuli // 6}\ninter_stimulus_interval_s = 1.0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "rig.cli", "run", str(protocol), "--sim"]
    command += ["--camera", "sim", "--out", str(root / "runs")]
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          env=env, cwd=ROOT)  # fmt: skip
    return Path(done.stdout.strip().splitlines()[-1].removeprefix("recording: "))


def _best(fn, n: int = 2) -> float:
    best = float("inf")
    for _ in range(n):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run(quick: bool = False) -> dict[str, float]:
    from rig.offline.batch import _no_progress
    from rig.offline.load import load_recording
    from rig.offline.pipeline import _positions, analyse

    scratch = Path(tempfile.mkdtemp(prefix="neurorig-bench-saved-"))
    try:
        folder = _record(scratch, 15 if quick else 60)

        def analyze(retrack: bool) -> dict:
            source = load_recording(folder)
            return analyse(source, _no_progress, retrack=retrack)

        assert analyze(False)["motion"]["tracking"]["source"] == "saved"  # warm
        saved_s = _best(lambda: analyze(False), 5)
        retrack_s = _best(lambda: analyze(True), 1)
        source = load_recording(folder)
        motion_saved_s = _best(
            lambda: _positions(load_recording(folder), _no_progress, False), 5
        )
        motion_retrack_s = _best(lambda: _positions(source, _no_progress, True), 1)
        minutes = len(source.frame_samples) / 60.0 / 60.0
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        tracking = (folder / "tracking.jsonl").stat().st_size
        print(f"  {len(source.frame_samples)} frames, {len(source.stimuli)} stimuli")
        return {
            "analyze_saved_tracking_s": saved_s,
            "analyze_retrack_s": retrack_s,
            "analyze_saved_tracking_speedup": retrack_s / saved_s,
            "motion_saved_tracking_s": motion_saved_s,
            "motion_retrack_s": motion_retrack_s,
            "recording_mb_per_min": size / 1e6 / minutes,
            "tracking_jsonl_mb_per_min": tracking / 1e6 / minutes,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
