"""Recording writer and reader: real files in tmp_path."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

import rig.recording
from rig.recording import RecordingFormatError, RecordingStopped, RecordingWriter


def make(tmp_path, **kw):
    return RecordingWriter.create(
        tmp_path / "run", n_channels=3, sample_rate_hz=30_000.0,
        metadata={"rig": {"id": "bench-1"}}, **kw,
    )  # fmt: skip


def test_samples_gaps_events_frames_and_attachments_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(-2000, 2000, (500, 3), dtype=np.int16)
    b = rng.integers(-2000, 2000, (300, 3), dtype=np.int16)
    c = rng.integers(-2000, 2000, (200, 3), dtype=np.int16)
    frames = rng.integers(0, 255, (4, 48, 64), dtype=np.uint8)
    (tmp_path / "mapping.toml").write_text("[protocol]\nname = 'x'\n")
    with make(tmp_path) as writer:
        writer.append_samples(1_000, a)
        writer.append_samples(1_500, b[:100])
        writer.append_samples(1_600, b[100:])
        writer.append_gap(1_800, 50)  # reported by the link
        writer.append_samples(1_900, c)  # and a jump forward of 50 more
        writer.append_event(1_200, "stim_delivered", amplitude_vpp=4.0, duration_s=3e-3)
        for i, frame in enumerate(frames):
            writer.append_frame(frame, None, 10.0 + i / 60)
        writer.write_frame_samples(
            [(i, 1000 + 500 * i, "trigger", i) for i in range(4)]
        )
        writer.attach_file("mapping.toml", tmp_path / "mapping.toml")
    rec = rig.recording.open(tmp_path / "run")
    assert rec.status == "completed" and rec.problems == []
    np.testing.assert_array_equal(rec.samples, np.concatenate([a, b, c]))
    numbers = rec.sample_numbers()
    assert numbers[0] == 1_000 and numbers[799] == 1_799 and numbers[800] == 1_900
    assert rec.gaps.tolist() == [[1_800, 50], [1_850, 50]]
    assert rec.samples[rec.rows_for(1_900, 10)].tolist() == c[:10].tolist()
    with pytest.raises(KeyError):
        rec.rows_for(1_790, 20)  # spans lost samples
    [stim] = rec.events_of("stim_delivered")
    assert stim["sample"] == 1_200 and stim["amplitude_vpp"] == 4.0
    np.testing.assert_array_equal(rec.frames.read_all(), frames)  # lossless
    assert rec.frame_samples.tolist() == [1000, 1500, 2000, 2500]
    assert rec.metadata["rig"] == {"id": "bench-1"}
    assert rec.metadata["n_rows"] == 1000 and rec.metadata["samples_lost"] == 100
    assert "mapping.toml" in rec.attachments


def test_torn_tail_is_ignored_and_reported(tmp_path):
    writer = make(tmp_path)
    writer.append_samples(0, np.ones((10, 3), np.int16))
    writer.append_event(3, "marker")
    writer.flush()
    folder = writer.folder
    with open(folder / "samples.i16", "ab") as out:
        out.write(b"\x01\x02\x03")  # a third of a row
    with open(folder / "events.jsonl", "ab") as out:
        out.write(b'{"sample": 9, "ki')
    rec = rig.recording.open(folder)
    assert rec.samples.shape == (10, 3)
    assert len(rec.events) == 1
    assert any("partial last row" in p for p in rec.problems)
    assert any("partial last line" in p for p in rec.problems)
    assert any("not closed" in p for p in rec.problems)


def test_bad_input_and_misuse_raise_clear_errors(tmp_path):
    writer = make(tmp_path)
    with pytest.raises(ValueError, match="int16"):
        writer.append_samples(0, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="2 channels, recording has 3"):
        writer.append_samples(0, np.ones((4, 2), np.int16))
    writer.append_samples(100, np.ones((4, 3), np.int16))
    with pytest.raises(ValueError, match="goes back"):
        writer.append_samples(50, np.ones((4, 3), np.int16))
    writer.close()
    with pytest.raises(RecordingStopped, match="closed"):
        writer.append_event(0, "late")


def test_newer_schema_and_non_recordings_are_refused_by_name(tmp_path):
    with pytest.raises(RecordingFormatError, match=r"no metadata\.json"):
        rig.recording.open(tmp_path)
    with make(tmp_path) as writer:
        writer.append_samples(0, np.zeros((1, 3), np.int16))
    meta = tmp_path / "run" / "metadata.json"
    data = json.loads(meta.read_text())
    data["schema_version"] = 99
    meta.write_text(json.dumps(data))
    with pytest.raises(RecordingFormatError, match="schema_version 99 is newer"):
        rig.recording.open(tmp_path / "run")


def test_numpy_alone_reads_the_samples(tmp_path):
    with make(tmp_path) as writer:
        writer.append_samples(7, np.arange(30, dtype=np.int16).reshape(10, 3))
    folder = tmp_path / "run"
    meta = json.loads((folder / "metadata.json").read_text())
    raw = np.fromfile(folder / "samples.i16", dtype="<i2").reshape(
        -1, meta["n_channels"]
    )
    first = json.loads((folder / "index.jsonl").read_text().splitlines()[0])
    assert first == {"kind": "run", "row": 0, "first_sample": 7}
    assert raw[9].tolist() == [27, 28, 29]


def test_closing_while_another_thread_appends_keeps_rows_and_metadata_equal(tmp_path):
    # The session appends from its relay thread while the caller closes.
    writer = RecordingWriter.create(
        tmp_path / "r", n_channels=4, sample_rate_hz=30e3, metadata={}
    )
    block = np.ones((300, 4), dtype=np.int16)
    appended, ticked = [], []

    def append_until_closed():
        first = 0
        try:
            while True:
                writer.append_samples(first, block)
                appended.append(first)
                writer.append_event(first, "tick")
                ticked.append(first)
                first += len(block)
        except RecordingStopped:
            return

    thread = threading.Thread(target=append_until_closed)
    thread.start()
    while len(appended) < 200:
        time.sleep(0.001)
    writer.close()
    thread.join(5.0)
    rec = rig.recording.open(tmp_path / "r")
    assert rec.samples.shape[0] == rec.metadata["n_rows"] == 300 * len(appended)
    assert len(rec.events_of("tick")) == len(ticked)


def test_camera_frame_numbers_and_frame_sources_round_trip(tmp_path):
    frames = (np.zeros((3, 48, 64)) + np.arange(3)[:, None, None]).astype(np.uint8)
    with make(tmp_path) as writer:
        for i, (frame, number) in enumerate(zip(frames, [40, None, 43])):
            writer.append_frame(frame, None, 1.0 + i / 60, camera_frame_number=number)
        writer.write_frame_samples(
            [(0, 500, "led_code", 1), (1, None, "not_determined", None),
             (2, 2000, "unproven", 4)]
        )  # fmt: skip
    rec = rig.recording.open(tmp_path / "run")
    assert rec.camera_frame_numbers.tolist() == [40, -1, 43]
    assert rec.frame_sources == ["led_code", "not_determined", "unproven"]
    assert rec.frame_samples.tolist() == [500, -1, 2000]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("index,time\n0,1.0\n", "header 'index,time'"),
        ("frame_index,host_time_s\n1,1.0\n", "line 2 is '1,1.0'"),
        ("frame_index,host_time_s,camera_frame_number\n0,1.0,x\n", "line 2"),
        ("frame_index,host_time_s,camera_frame_number\n0,1.0\n", "line 2"),
    ],
)
def test_a_bad_frames_csv_is_refused_naming_the_line(tmp_path, text, message):
    with make(tmp_path) as writer:
        writer.append_frame(np.zeros((48, 64), np.uint8), None, 1.0)
    (tmp_path / "run" / "frames.csv").write_text(text)
    with pytest.raises(RecordingFormatError, match=message):
        rig.recording.open(tmp_path / "run")
