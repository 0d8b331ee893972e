"""Streaming soak: 30 kS/s with 60 fps video through the simulated rig, recorder on.

The simulated board and its camera run in this process (their threads are
excluded from the host CPU figure, measured per thread from /proc). Figures:
``stream_lost_samples_4ch`` and ``stream_lost_samples_32ch`` (must be 0),
``stream_cpu_percent_4ch`` (host threads: serial reader, relay/recorder, frame
writer, main; percent of one core), ``recorder_rss_growth_mb`` (resident memory
growth from the first to the last minute of the 4-channel run).
Full runs are 10 minutes each; ``--quick`` runs 20 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from firmware_bridge.device import Device
from rig.core.session import Session
from rig.recording import RecordingWriter

SIM_THREADS = {"sim-rig", "sim-camera"}


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) of every thread of this process, by name."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        name = names.get(int(tid), f"native-{tid}")
        out[name] = out.get(name, 0.0) + cpu
    return out


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def recording_session(n_channels: int):
    """A started, recording Session on the simulated rig with 60 fps video;
    yields ``(session, writer)``; closes it and deletes the recording after."""
    device = Device.open(f"sim://?seed=1&channels={n_channels}")
    device.sim_rig.keep_ground_truth = False  # measure the host, not the simulator
    camera = device.sim_rig.camera()
    session = Session(device, channels=n_channels, camera=camera, camera_rate_hz=60.0)
    folder = Path(tempfile.mkdtemp(prefix="neurorig-soak-"))
    try:
        session.start()
        writer = RecordingWriter.create(
            folder / "run", n_channels=n_channels, sample_rate_hz=30_000.0, metadata={}
        )
        session.start_recording(writer)
        yield session, writer
    finally:
        session.close()
        shutil.rmtree(folder, ignore_errors=True)  # 10 min at 32 ch: ~6 GB


def soak(n_channels: int, seconds: float) -> dict[str, float]:
    """Stream and record for ``seconds``; return loss, host CPU and RSS figures."""
    with recording_session(n_channels) as (session, writer):
        time.sleep(min(5.0, seconds / 4))  # warm-up: caches, first frames
        cpu0, t0, rss0 = thread_cpu_s(), time.monotonic(), rss_mb()
        time.sleep(seconds)
        cpu1, t1, rss1 = thread_cpu_s(), time.monotonic(), rss_mb()
        session.stop()
        session.stop_recording()
        counters = session.acquisition.counters
    host = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if k not in SIM_THREADS)
    return {
        "lost": counters.samples_lost,
        "received": counters.samples_received,
        "cpu_percent": 100.0 * host / (t1 - t0),
        "rss_growth_mb": rss1 - rss0,
        "frames": writer.stats.frames,
    }


def run(quick: bool = False) -> dict[str, float]:
    """Run the 4- and 32-channel soaks."""
    seconds = 20.0 if quick else 600.0
    four = soak(4, seconds)
    thirty_two = soak(32, seconds)
    return {
        "stream_lost_samples_4ch": four["lost"],
        "stream_lost_samples_32ch": thirty_two["lost"],
        "stream_cpu_percent_4ch": four["cpu_percent"],
        "stream_cpu_percent_32ch": thirty_two["cpu_percent"],
        "recorder_rss_growth_mb": four["rss_growth_mb"],
        "stream_frames_recorded_4ch": four["frames"],
        "stream_seconds": seconds,
    }
