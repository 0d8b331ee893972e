"""SIGKILL of a recording process: what the writer was given is on disk.

The child hands data to a real writer and says so on stdout; the test kills it
with SIGKILL and reopens the folder. Samples and frame-table rows reach the OS
on the flush timer even when nothing more is appended; events before
``append_event`` returns; the reader calls the recording crashed and never
lists a frame the video file does not hold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import rig.recording

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from rig.recording import RecordingWriter
    folder, what = sys.argv[1], sys.argv[2]
    writer = RecordingWriter.create(folder, n_channels=4, sample_rate_hz=30000.0,
                                    metadata={})
    rng = np.random.default_rng(1)
    if what == "idle-after-samples":
        for k in range(10):  # 100 ms, then nothing more: only the timer flushes
            writer.append_samples(300 * k, rng.integers(-999, 999, (300, 4),
                                                        dtype=np.int16))
        writer.append_frame_samples([(0, 5, "trigger", 0), (1, 505, "trigger", 1)])
        print("handed", flush=True)
    elif what == "event":
        writer.append_samples(0, rng.integers(-999, 999, (300, 4), dtype=np.int16))
        writer.append_event(150, "stim_delivered", amplitude_vpp=4.0)
        writer.append_event(151, "trial", index=0)
        print("handed", flush=True)
    elif what == "video":
        yy, xx = np.mgrid[0:240, 0:320]
        for k in range(40):
            noise = rng.integers(0, 60, (240, 320))
            writer.append_frame(((xx + 3 * k) % 150 + noise).astype(np.uint8),
                                None, k / 60)
            writer.append_frame_samples([(k, 500 * k, "trigger", k)])
        print("handed", flush=True)
    time.sleep(60)
    """
)


def run_and_kill(folder, what, *, wait_s):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), what],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert child.stdout.readline().strip() == "handed"
        time.sleep(wait_s)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close()
    return rig.recording.open(folder)


def test_samples_and_frame_rows_reach_the_os_on_the_timer(tmp_path):
    # Nothing is appended after the last block: the old writer flushed only on
    # the next append, so the last ≤ 100 ms stayed in its buffer forever.
    rec = run_and_kill(tmp_path / "run", "idle-after-samples", wait_s=0.5)
    assert rec.status == "crashed" and rec.crashed
    assert rec.samples.shape[0] == 3000
    rng = np.random.default_rng(1)
    expected = np.concatenate(
        [rng.integers(-999, 999, (300, 4), dtype=np.int16) for _ in range(10)]
    )
    np.testing.assert_array_equal(rec.samples, expected)
    rows = (tmp_path / "run" / "frame_samples.csv").read_text().splitlines()
    assert rows == ["frame_index,sample,source,trigger_count", "0,5,trigger,0",
                    "1,505,trigger,1"]  # fmt: skip
    assert not (tmp_path / "run" / "metadata.json.tmp").exists()


def test_an_event_is_on_disk_when_append_event_returns(tmp_path):
    rec = run_and_kill(tmp_path / "run", "event", wait_s=0.0)  # no time to flush
    assert [(e["kind"], e["sample"]) for e in rec.events] == [
        ("stim_delivered", 150),
        ("trial", 151),
    ]


def test_a_killed_recording_lists_only_frames_its_video_holds(tmp_path):
    rec = run_and_kill(tmp_path / "run", "video", wait_s=0.3)
    assert rec.crashed
    listed = len((tmp_path / "run" / "frames.csv").read_text().splitlines()) - 1
    assert listed == 40  # frames.csv got every frame (the timer flushed it)
    n = len(rec.frame_times)
    assert 0 < n < listed  # the encoder's last buffer never reached the file
    assert any(f"holds {n}" in p for p in rec.problems)
    assert rec.frame_samples is not None and len(rec.frame_samples) == n
    np.testing.assert_array_equal(rec.frame_samples, 500 * np.arange(n))
    assert len(rec.frames) == n
    assert rec.frames[n - 1].shape == (240, 320)  # the last one listed decodes
    assert len(rec.frames.read_all()) == n
