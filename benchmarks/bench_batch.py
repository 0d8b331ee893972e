"""Batch analysis throughput: recordings analysed per minute, serial vs 2 Dask workers.

Real recordings made by ``neurorig run`` on the simulated rig (8 stimuli each,
about 3 s): without video (the electrophysiology alone, ~0.1 s to analyse)
and with the simulated camera's video (re-tracking decodes every frame, which
dominates; the saved tracking does not). Each set is analysed by
``rig.offline.batch.run_batch`` on the serial executor and on a
``LocalCluster(n_workers=2, threads_per_worker=1)``; both are warmed up first
(Numba kernels loaded in every process), so the figures are throughput, not start-up. Figures:

- ``batch_recordings_per_min_serial`` / ``_2workers``: without video;
- ``batch_video_recordings_per_min_serial`` / ``_2workers``: with video,
  motion from the tracking saved while recording (the video not opened);
- ``batch_video_retrack_recordings_per_min_serial`` / ``_2workers``: the same
  recordings with ``retrack`` (``--retrack``: every frame decoded and tracked);
- ``batch_cluster_start_s``: starting the 2-worker LocalCluster.

The machine has 2 cores, shared: 2 workers can at best double the rate.
Full: 12 recordings per set; quick: 4.
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
PROTOCOL = """format_version = 1
[protocol]
name = "bench-batch"
seed = 1
[[block]]
amplitude_vpp = [2.0, 3.0, 4.0, 5.0]
duration_ms = [2.0, 4.0]
inter_stimulus_interval_s = 0.25
"""


def _make(root: Path, n: int, *, video: bool) -> list[Path]:
    root.mkdir(parents=True)
    protocol = root.parent / "bench.toml"
    protocol.write_text(PROTOCOL)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i in range(n):
        command = [sys.executable, "-m", "rig.cli", "run", str(protocol), "--sim"]
        command += ["--seed", str(i + 1), "--out", str(root / f"worm-{i % 3}")]
        if video:
            command += ["--camera", "sim"]
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
        time.sleep(1.0)  # recordings are named by the second
    from rig.offline.batch import find_recordings

    return find_recordings(root)


def _rate(paths: list[Path], executor, options: dict | None = None) -> float:
    from rig.offline.batch import run_batch

    started = time.perf_counter()
    results = run_batch(paths, executor, options=options)
    elapsed = time.perf_counter() - started
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"analysis failed: {failed[0]}")
    return len(paths) / elapsed * 60.0


def run(quick: bool = False) -> dict[str, float]:
    import distributed

    from rig.offline.batch import SerialExecutor, analyse_recording

    n = 4 if quick else 12
    scratch = Path(tempfile.mkdtemp(prefix="neurorig-bench-batch-"))
    figures: dict[str, float] = {}
    try:
        sets = {
            "batch_recordings_per_min": _make(scratch / "ephys", n, video=False),
            "batch_video_recordings_per_min": _make(scratch / "video", n, video=True),
        }
        warm = sets["batch_recordings_per_min"][0]
        analyse_recording(str(warm))  # this process's kernels loaded
        retrack = {"retrack": True}
        video = sets["batch_video_recordings_per_min"]
        for name, paths in sets.items():
            figures[f"{name}_serial"] = _rate(paths, SerialExecutor())
        figures["batch_video_retrack_recordings_per_min_serial"] = _rate(
            video, SerialExecutor(), retrack
        )
        started = time.perf_counter()
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            scheduler_kwargs={"dashboard": False},
            silence_logs=40,
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            client.wait_for_workers(2)
            figures["batch_cluster_start_s"] = time.perf_counter() - started
            client.run(analyse_recording, str(warm))  # every worker warmed up
            for name, paths in sets.items():
                executor = client.get_executor(pure=False)  # every task run afresh
                figures[f"{name}_2workers"] = _rate(paths, executor)
            executor = client.get_executor(pure=False)
            figures["batch_video_retrack_recordings_per_min_2workers"] = _rate(
                video, executor, retrack
            )
        size_mb = sum(
            f.stat().st_size for p in sets["batch_video_recordings_per_min"]
            for f in p.rglob("*")
        ) / n / 1e6  # fmt: skip
        print(f"  {n} recordings per set; a recording with video: {size_mb:.0f} MB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures
