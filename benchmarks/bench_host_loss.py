"""Host loss on a loaded machine: the shipped protocols under two CPU hogs.

Each protocol in ``protocols/`` is run as a user runs it, ``neurorig run
PROTOCOL --sim --camera sim`` (the simulated board and camera in a process of
their own, 60 fps video, live tracking and the optical sync code, recording
on), while two CPU-bound processes take both cores of the 2-core development
machine for the whole run. The board disarms and latches HOST_LOSS when it
hears nothing from the host for 300 ms; the host heartbeats every 50 ms on its
thread, without the GIL, in the real-time scheduling class where permitted
(firmware_bridge._heartbeat).

Figures: ``host_loss_faults`` (HOST_LOSS faults over all runs; must be 0),
``host_loss_runs_not_completed``, ``heartbeat_max_gap_ms`` (the host's longest
time between two heartbeats, over all runs, from the device's opening: start-up
included), ``heartbeats_late`` (gaps over 150 ms, all runs),
``heartbeats_withheld`` (not sent because the host's serial reader had not run
for 1 s), ``heartbeat_realtime`` (1 if every run's heartbeat thread was in the
real-time class), ``host_loss_runs``, ``host_loss_load_average`` (the
machine's 1-minute load average at the end: others' work counts too).
``--quick`` runs mapping.toml only; a full run takes ~12 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._load import busy_processes

ROOT = Path(__file__).resolve().parents[1]


def run_protocol(protocol: Path, out: Path) -> dict:
    """``neurorig run PROTOCOL --sim --camera sim``; its JSON summary (or why not)."""
    command = [sys.executable, "-m", "rig.cli", "run", str(protocol), "--sim"]
    command += ["--camera", "sim", "--out", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    start = done.stdout.find("{")
    if start < 0:
        return {"status": f"no summary (exit {done.returncode})", "faults": []}
    summary, _ = json.JSONDecoder().raw_decode(done.stdout[start:])
    return summary


def run(quick: bool = False) -> dict[str, float]:
    """Run the protocols under load; count HOST_LOSS faults."""
    protocols = sorted((ROOT / "protocols").glob("*.toml"))
    if quick:
        protocols = [ROOT / "protocols" / "mapping.toml"]
    host_loss = not_completed = late = withheld = 0
    realtime = True
    max_gap_ms = 0.0
    with tempfile.TemporaryDirectory(prefix="neurorig-host-loss-") as out:
        with busy_processes(2):
            for protocol in protocols:
                summary = run_protocol(protocol, Path(out))
                losses = sum("HOST_LOSS" in str(f) for f in summary["faults"])
                gap = float(summary.get("heartbeat_max_gap_ms", float("nan")))
                print(
                    f"  {protocol.name}: {summary['status']}, {losses} HOST_LOSS, "
                    f"heartbeat max gap {gap:.1f} ms, "
                    f"{summary.get('heartbeats_withheld')} withheld, load "
                    f"{os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                host_loss += losses
                not_completed += summary["status"] != "completed"
                late += int(summary.get("heartbeats_late", 0))
                withheld += int(summary.get("heartbeats_withheld", 0))
                realtime &= bool(summary.get("heartbeat_realtime", False))
                max_gap_ms = max(max_gap_ms, gap)
    return {
        "host_loss_faults": host_loss,
        "host_loss_runs_not_completed": not_completed,
        "heartbeat_max_gap_ms": max_gap_ms,
        "heartbeats_late": late,
        "heartbeats_withheld": withheld,
        "heartbeat_realtime": int(realtime),
        "host_loss_runs": len(protocols),
        "host_loss_load_average": os.getloadavg()[0],
    }
