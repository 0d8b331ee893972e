"""SIGKILL of a recording: what is lost, against the board's own counters.

Twenty times: the simulated board and its camera in their own process
(``neurorig sim --camera-socket``), ``neurorig run`` recording a protocol (one
3 Vpp × 2 ms pulse every 0.25 s) with 60 fps video in another, two CPU-bound
processes beside them (both cores of the development machine taken); at a
random time after the first stimulus the recording process is killed with
SIGKILL. Then the board is asked over its port (GET_STATUS) for its sample
counter and its stimulation on-time of the last minute, and the recording is
reopened:

* samples lost: the board's sample number at the kill (its counter when asked,
  less the seconds since the kill × the sample rate) minus the last sample on
  disk, in ms. This counts everything between the board and the disk: the
  pty, the link, the relay and the writer.
* stimuli lost: pulses the board delivered (on-time ÷ 2 ms; each run is under
  a minute) minus ``stim_delivered`` events on disk, leaving out a pulse whose
  expected onset (the last one on disk + 0.25 s) is within ``MARGIN_MS`` of the
  kill: the host could not have had it. ``trial`` events missing beside a
  ``stim_delivered`` on disk are counted too.
* video lost: the kill's time minus the arrival time of the last frame the
  video file holds, in ms (a frame comes every 16.7 ms: that much is no loss).

Figures: ``sigkill_lost_ms_p50``, ``sigkill_lost_ms_p100``,
``sigkill_stimuli_lost``, ``sigkill_trials_lost``, ``sigkill_stimuli_in_flight``,
``sigkill_video_lost_ms_p50``, ``sigkill_video_lost_ms_p100``,
``sigkill_frames_listed_beyond_video`` (max, before the reader drops them), and
the flush timer's cost: ``writer_cpu_ms_per_s_flush_20ms`` against
``writer_cpu_ms_per_s_flush_100ms`` (32 channels at 30 kS/s handed over in
10 ms blocks, CPU time of the writing process per second). ``--quick`` kills 4
times.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import rig.recording
from benchmarks._load import busy_processes
from firmware_bridge.device import Device
from rig.procedures.latency import external_simulator
from rig.recording import RecordingWriter

FS = 30_000
ISI_S = 0.25
PULSE_MS = 2.0
MARGIN_MS = 20.0
PROTOCOL = f"""\
format_version = 1

[protocol]
name = "sigkill"
description = "one 3 Vpp x 2 ms pulse every {ISI_S} s"
seed = 1

[defaults]
pairs = [0]
polarities = ["positive_first"]
inter_stimulus_interval_s = {ISI_S}

[[block]]
kind = "sweep"
name = "steady"
amplitude_vpp = [3.0]
duration_ms = [{PULSE_MS}]
repeats = 120
order = "sequential"
"""


def wait_for_first_stimulus(out: Path, child: subprocess.Popen, timeout_s=60.0):
    """The recording folder once its first stim_delivered event is on disk."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"neurorig run exited early ({child.returncode})")
        for events in out.glob("*/events.jsonl"):
            if b'"stim_delivered"' in events.read_bytes():
                return events.parent
        time.sleep(0.05)
    raise RuntimeError("no stimulus recorded within a minute")


def one_kill(seed: int, work: Path, rng: random.Random) -> dict[str, float]:
    """Run, kill, ask the board, reopen: the losses of one kill."""
    protocol = work / "sigkill.toml"
    protocol.write_text(PROTOCOL)
    out = work / f"runs-{seed}"
    camera = work / f"camera-{seed}.sock"
    with external_simulator(seed, camera_socket=camera) as port:
        command = [sys.executable, "-m", "rig.cli", "run", str(protocol)]
        command += ["--port", port, "--camera", str(camera), "--out", str(out)]
        log = open(work / f"run-{seed}.log", "w")  # closed below
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            folder = wait_for_first_stimulus(out, child)
            time.sleep(rng.uniform(0.3, 6.0))
            t_kill = time.monotonic()
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            log.close()
        device = Device.open(port, heartbeat=False)
        try:
            t0 = time.monotonic()
            status = device.status()
            t1 = time.monotonic()
        finally:
            device.close()
    board_rate = status.sample_rate_hz
    kill_sample = status.sample_index - ((t0 + t1) / 2 - t_kill) * board_rate
    delivered = round(status.on_time_ms_last_min / PULSE_MS)
    rec = rig.recording.open(folder)
    assert rec.crashed, rec.status
    last = int(rec.sample_numbers()[-1])
    stim = [e["sample"] for e in rec.events_of("stim_delivered")]
    trials = {e["sample"] for e in rec.events_of("trial")}
    margin = MARGIN_MS / 1000 * board_rate
    missing = delivered - len(stim)
    in_flight = 0
    if missing > 0 and stim and stim[-1] + ISI_S * board_rate > kill_sample - margin:
        in_flight = 1  # the next pulse was due at the kill: the host never had it
    listed = len((folder / "frames.csv").read_text().splitlines()) - 1
    video_lost_ms = float("nan")
    if len(rec.frame_times):
        video_lost_ms = (t_kill - rec.frame_times[-1]) * 1e3
    return {
        "lost_ms": (kill_sample - last - 1) / board_rate * 1e3,
        "stimuli_lost": max(0, missing - in_flight),
        "in_flight": in_flight,
        "trials_lost": sum(
            1 for s in stim if s not in trials and s < kill_sample - margin
        ),
        "video_lost_ms": video_lost_ms,
        "beyond_video": listed - len(rec.frame_times),
    }


def flush_cost(interval_s: float, seconds: float) -> float:
    """CPU ms per second of a real-time 32-channel writer at ``interval_s``."""
    folder = Path(tempfile.mkdtemp(prefix="neurorig-flush-"))
    try:
        writer = RecordingWriter.create(
            folder / "run", n_channels=32, sample_rate_hz=FS, metadata={},
            flush_interval_s=interval_s,
        )  # fmt: skip
        block = np.zeros((300, 32), np.int16)
        start, cpu0 = time.monotonic(), time.process_time()
        k = 0
        while time.monotonic() - start < seconds:
            writer.append_samples(300 * k, block)
            k += 1
            time.sleep(max(0.0, start + k * 0.01 - time.monotonic()))
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - start
        writer.close()
        return cpu / wall * 1e3
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(quick: bool = False) -> dict[str, float]:
    """Kill a recording 20 times (4 with ``quick``); figures above."""
    n_kills = 4 if quick else 20
    rng = random.Random(15)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="neurorig-sigkill-"))
    try:
        with busy_processes(2):
            for k in range(n_kills):
                row = one_kill(100 + k, work, rng)
                rows.append(row)
                print(f"  kill {k + 1}/{n_kills}: {json.dumps(row)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lost = np.array([r["lost_ms"] for r in rows])
    video = np.array([r["video_lost_ms"] for r in rows])
    seconds = 2.0 if quick else 5.0
    return {
        "sigkill_lost_ms_p50": float(np.percentile(lost, 50)),
        "sigkill_lost_ms_p100": float(lost.max()),
        "sigkill_stimuli_lost": float(sum(r["stimuli_lost"] for r in rows)),
        "sigkill_trials_lost": float(sum(r["trials_lost"] for r in rows)),
        "sigkill_stimuli_in_flight": float(sum(r["in_flight"] for r in rows)),
        "sigkill_video_lost_ms_p50": float(np.nanpercentile(video, 50)),
        "sigkill_video_lost_ms_p100": float(np.nanmax(video)),
        "sigkill_frames_listed_beyond_video": float(
            max(r["beyond_video"] for r in rows)
        ),
        "writer_cpu_ms_per_s_flush_20ms": flush_cost(0.02, seconds),
        "writer_cpu_ms_per_s_flush_100ms": flush_cost(0.1, seconds),
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
