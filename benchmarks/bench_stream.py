"""Streaming soak: 30 kS/s with 60 fps video through the simulated rig, recorder on.

The simulated board and its camera run in their own process (``neurorig sim
--camera-socket``), as real hardware does: the board's bytes come over the
pseudo-terminal, the camera's frames over a Unix socket (live YUV4MPEG2), and
everything measured here is the host's own work. Figures:
``stream_lost_samples_4ch`` and ``stream_lost_samples_32ch`` (must be 0),
``stream_cpu_percent_4ch`` (the host process: serial reader, relay/recorder,
camera reader, frame writer, tracking; percent of one core),
``recorder_rss_growth_mb`` (resident memory growth from the first to the last
minute of the 4-channel run).
``stream_lost_samples_32ch_busy_cpu``: 32 channels for a tenth of the time
with two CPU-bound processes competing (every core of the 2-vCPU development
machine taken), which is how losses used to show. Full runs are 10 minutes
each; ``--quick`` runs 20 s.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._load import busy_processes
from rig.core.connect import open_rig, simulated_rig_description
from rig.procedures.latency import external_simulator
from rig.recording import RecordingWriter


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def recording_session(n_channels: int):
    """A started, recording Session on the simulated rig (its own process) with
    60 fps video; yields ``(session, writer)``; closes it and deletes the
    recording after."""
    folder = Path(tempfile.mkdtemp(prefix="neurorig-soak-"))
    camera_socket = folder / "camera.sock"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)  # 32 ch: ~6 GB
        port = stack.enter_context(
            external_simulator(1, channels=n_channels, camera_socket=camera_socket)
        )
        # Opened by its port and described as a rig file would (the front door
        # for hardware), so live tracking runs as on a real rig.
        session = open_rig(
            port, camera=str(camera_socket), channels=n_channels,
            rig=simulated_rig_description(n_channels), camera_rate_hz=60.0,
        )  # fmt: skip
        stack.callback(session.close)
        session.start()
        writer = RecordingWriter.create(
            folder / "run", n_channels=n_channels, sample_rate_hz=30_000.0, metadata={}
        )
        session.start_recording(writer)
        yield session, writer


def soak(n_channels: int, seconds: float, *, busy: int = 0) -> dict[str, float]:
    """Stream and record for ``seconds`` (with ``busy`` CPU-bound processes
    competing); return loss, host CPU and RSS figures."""
    with recording_session(n_channels) as (session, writer):
        time.sleep(min(5.0, seconds / 4))  # warm-up: caches, first frames
        cpu0, t0, rss0 = time.process_time(), time.monotonic(), rss_mb()
        with busy_processes(busy):
            time.sleep(seconds)
        cpu1, t1, rss1 = time.process_time(), time.monotonic(), rss_mb()
        session.stop()
        session.stop_recording()
        counters = session.acquisition.counters
    return {
        "lost": counters.samples_lost,
        "received": counters.samples_received,
        "cpu_percent": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "rss_growth_mb": rss1 - rss0,
        "frames": writer.stats.frames,
    }


def run(quick: bool = False) -> dict[str, float]:
    """Run the 4- and 32-channel soaks, and 32 channels with the CPU taken."""
    seconds = 20.0 if quick else 600.0
    four = soak(4, seconds)
    thirty_two = soak(32, seconds)
    busy = soak(32, seconds / 10, busy=2)
    return {
        "stream_lost_samples_4ch": four["lost"],
        "stream_lost_samples_32ch": thirty_two["lost"],
        "stream_lost_samples_32ch_busy_cpu": busy["lost"],
        "stream_cpu_percent_4ch": four["cpu_percent"],
        "stream_cpu_percent_32ch": thirty_two["cpu_percent"],
        "recorder_rss_growth_mb": four["rss_growth_mb"],
        "stream_frames_recorded_4ch": four["frames"],
        "stream_seconds": seconds,
    }
