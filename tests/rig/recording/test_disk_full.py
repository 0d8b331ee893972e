"""A full disk, on a real tiny filesystem: samples, events, video, frame table and
metadata all stop with DiskFullError naming the file; everything before is
readable; no temporary file is left; metadata says why."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rig.recording
from rig.recording import DiskFullError, RecordingStopped, RecordingWriter

MiB = 1 << 20


def frames_like_a_camera(n, seed=0, shape=(240, 320)):
    """Noisy frames: FFV1 cannot squeeze them much (~60 KB each)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    for k in range(n):
        noise = rng.integers(0, 60, shape)
        yield ((xx + 3 * k) % 150 + noise).astype(np.uint8)


def leftovers(folder):
    return sorted(
        p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".reserve"))
    )


def test_the_guard_stops_before_the_disk_is_full_and_everything_is_readable(tiny_fs):
    disk = tiny_fs(12 * MiB)
    writer = RecordingWriter.create(
        disk / "run",
        n_channels=4,
        sample_rate_hz=30_000.0,
        metadata={},
        free_space_reserve_s=1.0,
        free_space_floor_bytes=3 * MiB,
    )
    rng = np.random.default_rng(3)
    blocks, frames, rows = [], [], 0
    camera = frames_like_a_camera(10_000)
    with pytest.raises(DiskFullError) as info:
        for k in range(100_000):
            block = rng.integers(-1000, 1000, (300, 4), dtype=np.int16)
            writer.append_samples(300 * k, block)
            blocks.append(block)
            writer.append_event(300 * k, "stim_delivered", k=k)
            frame = next(camera)
            writer.append_frame(frame, None, k / 60)
            frames.append(frame)
            writer.append_frame_samples([(k, 300 * k, "trigger", k)])
            rows += 1
    message = str(info.value)
    assert "disk full while recording" in message and "saved" in message
    assert "free, below the reserve" in message and "MB/s" in message
    with pytest.raises(RecordingStopped, match="disk full"):
        writer.append_event(0, "after")
    writer.close("completed")  # its own status (disk_full) is kept
    folder = disk / "run"
    assert leftovers(folder) == []
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["status"] == "disk_full"
    assert "reserve" in meta["stop_reason"]
    rec = rig.recording.open(folder)
    assert rec.status == "disk_full"
    n = rec.samples.shape[0]
    assert n >= 300 * (len(blocks) - 1)  # all but what was buffered past the stop
    np.testing.assert_array_equal(rec.samples, np.concatenate(blocks)[:n])
    assert [e["k"] for e in rec.events] == list(range(len(rec.events)))
    assert len(rec.events) >= len(blocks) - 1
    n_frames = len(rec.frame_times)
    assert n_frames >= len(frames) - 1  # the video was finished, not cut
    assert len(rec.frames) == n_frames
    np.testing.assert_array_equal(rec.frames[n_frames - 1], frames[n_frames - 1])
    np.testing.assert_array_equal(rec.frames.read_all(), np.stack(frames[:n_frames]))
    assert rec.frame_samples is not None
    # a frame whose row was refused (the stop came between them) has none: -1
    expected = np.where(np.arange(n_frames) < rows, 300 * np.arange(n_frames), -1)
    np.testing.assert_array_equal(rec.frame_samples, expected)


def test_a_video_that_hits_a_full_disk_raises_disk_full_naming_it(tiny_fs):
    disk = tiny_fs(3 * MiB)
    writer = RecordingWriter.create(
        disk / "run",
        n_channels=4,
        sample_rate_hz=30_000.0,
        metadata={},
        free_space_reserve_s=0,  # no guard: OpenCV meets the full disk itself
        free_space_floor_bytes=0,
    )
    frames = []
    with pytest.raises(DiskFullError) as info:
        for k, frame in enumerate(frames_like_a_camera(1000)):
            writer.append_frame(frame, None, k / 60)
            frames.append(frame)
    assert info.value.filename.endswith("video.mkv")
    assert "disk full while recording" in str(info.value)
    assert len(frames) < 1000  # it stopped at the wall, not at the end
    writer.close()
    folder = disk / "run"
    assert leftovers(folder) == []
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["status"] == "disk_full"  # the reserve made room for it
    assert "video.mkv" in meta["stop_reason"]
    rec = rig.recording.open(folder)
    n = len(rec.frame_times)
    assert 0 < n <= len(frames)  # never a frame the video does not hold
    np.testing.assert_array_equal(rec.frames.read_all(), np.stack(frames[:n]))


def test_samples_on_a_full_disk_name_the_samples_file(tiny_fs):
    disk = tiny_fs(1 * MiB)
    writer = RecordingWriter.create(
        disk / "run", n_channels=4, sample_rate_hz=30_000.0, metadata={},
        free_space_reserve_s=0, free_space_floor_bytes=0,
    )  # fmt: skip
    rng = np.random.default_rng(4)
    blocks = []
    with pytest.raises(DiskFullError) as info:
        for k in range(10_000):
            blocks.append(rng.integers(-1000, 1000, (3000, 4), dtype=np.int16))
            writer.append_samples(3000 * k, blocks[-1])
            writer.flush()
    assert info.value.filename.endswith("samples.i16")
    writer.close()
    rec = rig.recording.open(disk / "run")
    assert rec.status == "disk_full"
    n = rec.samples.shape[0]
    assert n > 0
    np.testing.assert_array_equal(rec.samples, np.concatenate(blocks)[:n])
    assert leftovers(disk / "run") == []


def test_metadata_on_a_full_disk_leaves_no_temporary_file(tiny_fs):
    disk = tiny_fs(1 * MiB)
    writer = RecordingWriter.create(
        disk / "run", n_channels=2, sample_rate_hz=1000.0, metadata={"a": 1},
        free_space_reserve_s=0, free_space_floor_bytes=0,
    )  # fmt: skip
    with open(disk / "filler", "wb") as filler:  # something else fills the disk
        with pytest.raises(OSError):
            while True:
                filler.write(bytes(64 << 10))
                filler.flush()
    with pytest.raises(DiskFullError) as info:
        writer.update_metadata(notes="x" * (512 << 10))  # bigger than the reserve
    assert info.value.filename.endswith("metadata.json")
    assert leftovers(disk / "run") == []
    meta = json.loads((disk / "run" / "metadata.json").read_text())
    assert meta["status"] == "disk_full"
    assert "metadata.json" in meta["stop_reason"]
    writer.close()
    assert rig.recording.open(disk / "run").status == "disk_full"


def test_a_frame_table_row_on_a_full_disk_stops_the_recording(tiny_fs):
    disk = tiny_fs(1 * MiB)
    writer = RecordingWriter.create(
        disk / "run", n_channels=2, sample_rate_hz=1000.0, metadata={},
        free_space_reserve_s=0, free_space_floor_bytes=0,
    )  # fmt: skip
    with pytest.raises(DiskFullError) as info:
        for k in range(1_000_000):
            writer.append_frame_samples([(k, 10 * k, "trigger", k)] * 50)
            writer.flush()
    assert info.value.filename.endswith("frame_samples.csv")
    writer.close()
    assert leftovers(disk / "run") == []


def test_too_little_space_to_start_is_refused_and_leaves_nothing(tiny_fs):
    disk = tiny_fs(2 * MiB)
    with pytest.raises(DiskFullError, match="cannot start a recording") as info:
        RecordingWriter.create(
            disk / "run", n_channels=4, sample_rate_hz=30_000.0, metadata={},
            free_space_floor_bytes=4 * MiB,
        )  # fmt: skip
    assert "MB free" in str(info.value)
    assert not (disk / "run").exists()
