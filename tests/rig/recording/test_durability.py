"""Crash safety: SIGKILL mid-recording and a full disk, on real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

import rig.recording
from rig.recording import DiskFullError, RecordingStopped, RecordingWriter

FS = 30_000
CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from rig.recording import RecordingWriter
    writer = RecordingWriter.create(sys.argv[1], n_channels=4, sample_rate_hz=30000.0,
                                    metadata={})
    rng = np.random.default_rng(1)
    start = time.monotonic()
    first = 0
    while True:
        block = rng.integers(-1000, 1000, (300, 4), dtype=np.int16)
        writer.append_samples(first, block)
        first += 300
        print(first, flush=True)  # every sample before `first` was handed over
        time.sleep(max(0.0, start + first / 30000 - time.monotonic()))
    """
)


def test_sigkill_loses_at_most_100_ms(tmp_path):
    folder = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    handed = 0
    try:
        for line in child.stdout:
            handed = int(line)
            if handed >= FS:  # one second in
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close()
    rec = rig.recording.open(folder)
    assert rec.status == "crashed"  # it never closed, its process is gone
    assert rec.metadata["status"] == "recording"
    kept = int(rec.sample_numbers()[-1]) + 1
    assert handed - kept <= FS // 10  # at most 100 ms of what was handed over
    rng = np.random.default_rng(1)  # the child's blocks, drawn the same way
    blocks = [
        rng.integers(-1000, 1000, (300, 4), dtype=np.int16)
        for _ in range(kept // 300 + 1)
    ]
    expected = np.concatenate(blocks)
    np.testing.assert_array_equal(rec.samples, expected[:kept])


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_stops_cleanly_and_keeps_everything_before(tiny_disk):
    writer = RecordingWriter.create(
        tiny_disk / "run",
        n_channels=4,
        sample_rate_hz=30_000.0,
        metadata={},
        flush_interval_s=0.0,
        free_space_reserve_s=0,  # no guard: the disk really fills
        free_space_floor_bytes=0,
    )
    rng = np.random.default_rng(2)
    blocks = []
    with pytest.raises(DiskFullError) as info:
        for k in range(10_000):
            block = rng.integers(-1000, 1000, (300, 4), dtype=np.int16)
            blocks.append(block)  # the block that hits the wall may land in part
            writer.append_samples(300 * k, block)
            writer.append_event(300 * k, "marker", k=k)
    message = str(info.value)
    assert "disk full while recording" in message and "saved" in message
    assert info.value.filename.endswith(("samples.i16", "index.jsonl", "events.jsonl"))
    with pytest.raises(RecordingStopped, match="disk full"):
        writer.append_event(0, "after")
    writer.close()
    rec = rig.recording.open(tiny_disk / "run")
    n = rec.samples.shape[0]
    assert n > 10_000  # most of the 1 MiB
    np.testing.assert_array_equal(rec.samples, np.concatenate(blocks)[:n])
    assert rec.sample_numbers()[-1] == n - 1
    assert rec.events[0]["k"] == 0
