"""``neurorig serve --sim`` in its own process, as a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """A running ``neurorig serve``: where, its token, its process and output."""

    address: str
    events_address: str
    token: str
    token_file: Path
    process: subprocess.Popen
    out: Path


@contextmanager
def serve_sim(tmp: Path, *extra: str, seed: int = 1):
    """Start ``neurorig serve --sim`` on free loopback ports; yield a Served;
    stop it with Ctrl-C (SIGINT) as a user would."""
    token_file = tmp / "remote.token"
    out = tmp / "runs"
    command = [sys.executable, "-m", "rig.cli", "serve", "--sim", "--seed", str(seed)]
    command += ["--bind", "127.0.0.1:0", "--token-file", str(token_file)]
    command += ["--out", str(out), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    try:
        lines = {}
        for line in process.stdout:
            key, _, value = line.partition(": ")
            lines[key] = value.strip()
            if key == "token file":
                break
        if "serving" not in lines:
            process.kill()
            raise RuntimeError(f"neurorig serve did not start: {process.stderr.read()}")
        address, _, events = lines["serving"].partition(" (events ")
        yield Served(
            address=address,
            events_address=events.rstrip(")"),
            token=lines["token"],
            token_file=Path(lines["token file"]),
            process=process,
            out=out,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        process.stderr.close()
