"""Open Ephys binary export read back by the field's readers: neo's
``OpenEphysBinaryRawIO`` and SpikeInterface's ``read_openephys`` (real files,
real readers; the recording is a simulated worm written by the real writer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rig.recording
from rig.export.openephys import (
    RECORD_NODE,
    STREAM_FOLDER,
    OpenEphysExportError,
    export_openephys,
)
from rig.recording import RecordingWriter
from tests.offline._recordings import FS, worm_recording

neo_rawio = pytest.importorskip("neo.rawio")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A recording with a gap (two runs), calibrated gains, stimuli on two pairs,
    and its export."""
    folder = tmp_path_factory.mktemp("oe")
    worm = worm_recording(folder / "rec")
    done = export_openephys(worm.path, folder / "oe")
    return worm, done


def _reader(path):
    reader = neo_rawio.OpenEphysBinaryRawIO(str(path))
    reader.parse_header()
    return reader


def test_the_layout_is_the_guis(exported):
    worm, done = exported
    assert [p.name for p in done.recordings] == ["recording1", "recording2"]
    assert not done.linked  # two runs: each copied
    rec1 = done.folder / RECORD_NODE / "experiment1" / "recording1"
    oebin = json.loads((rec1 / "structure.oebin").read_text())
    assert oebin["GUI version"].startswith("0.6")
    [stream] = oebin["continuous"]
    assert stream["folder_name"] == f"{STREAM_FOLDER}/"
    assert stream["num_channels"] == 4 and stream["sample_rate"] == FS
    for key in ("source_processor_name", "source_processor_id", "stream_name",
                "recorded_processor", "recorded_processor_id"):  # fmt: skip
        assert key in stream
    assert [c["bit_volts"] for c in stream["channels"]] == worm.uv_per_count.tolist()
    assert {c["units"] for c in stream["channels"]} == {"uV"}
    ttl = rec1 / "events" / STREAM_FOLDER / "TTL"
    dtypes = {p.stem: np.load(p).dtype for p in ttl.glob("*.npy")}
    assert dtypes == {
        "states": np.int16,
        "sample_numbers": np.int64,
        "timestamps": np.float64,
        "full_words": np.uint64,
    }
    continuous = rec1 / "continuous" / STREAM_FOLDER
    numbers = np.load(continuous / "sample_numbers.npy")
    assert numbers[0] == worm.first_sample and np.all(np.diff(numbers) == 1)
    np.testing.assert_array_equal(np.load(continuous / "timestamps.npy"), numbers / FS)
    assert (continuous / "continuous.dat").stat().st_size == numbers.size * 4 * 2
    sync = (rec1 / "sync_messages.txt").read_text().splitlines()
    assert sync[1].endswith(f"@ {FS} Hz: {worm.first_sample}")


def test_neo_reads_traces_in_microvolts_one_segment_per_run(exported):
    worm, done = exported
    rec = rig.recording.open(worm.path)
    numbers = rec.sample_numbers()
    reader = _reader(done.folder)
    assert reader.segment_count(0) == 2  # the gap is not closed up
    channels = reader.header["signal_channels"]
    assert set(channels["units"]) == {"uV"}
    for seg, (row0, row1) in enumerate([(0, rec.runs[1, 0]), (rec.runs[1, 0], None)]):
        raw = reader.get_analogsignal_chunk(0, seg, stream_index=0)
        uv = reader.rescale_signal_raw_to_float(raw, "float64", stream_index=0)
        expected = rec.samples[row0:row1].astype(np.float64) * worm.uv_per_count
        np.testing.assert_array_equal(uv, expected)  # bit for bit
        t_start = reader.get_signal_t_start(0, seg, 0)
        assert t_start == numbers[row0] / FS


def test_neo_reads_every_stimulus_with_its_duration(exported):
    worm, done = exported
    reader = _reader(done.folder)
    names = list(reader.header["event_channels"]["name"])
    assert names == ["Messages", "stimuli"]
    index = names.index("stimuli")
    times, durations, labels = [], [], []
    for seg in range(reader.segment_count(0)):
        ts, dur, lab = reader.get_event_timestamps(0, seg, index)
        times += reader.rescale_event_timestamp(ts, "float64", index).tolist()
        durations += reader.rescale_epoch_duration(dur, "float64", index).tolist()
        labels += lab.tolist()
    assert times == pytest.approx(np.array(worm.onsets) / FS, abs=1e-12)
    assert durations == pytest.approx(worm.durations_s, abs=0.5 / FS)
    assert labels == [str(p + 1) for p in worm.pairs]  # line = pair + 1
    # Every recording event is in the message centre, as its JSON line.
    messages = names.index("Messages")
    texts = []
    for seg in range(reader.segment_count(0)):
        texts += reader.get_event_timestamps(0, seg, messages)[2].tolist()
    assert [json.loads(t) for t in texts] == rig.recording.open(worm.path).events


def test_full_words_hold_every_lines_state(exported):
    worm, done = exported
    words, states = [], []
    for folder in done.recordings:
        ttl = folder / "events" / STREAM_FOLDER / "TTL"
        words += np.load(ttl / "full_words.npy").tolist()
        states += np.load(ttl / "states.npy").tolist()
    word = 0
    for state, full in zip(states, words, strict=True):
        bit = 1 << (abs(state) - 1)
        word = word | bit if state > 0 else word & ~bit
        assert full == word
    assert word == 0 and len(states) == 2 * len(worm.onsets)


def test_spikeinterface_reads_gains_traces_and_events(exported):
    se = pytest.importorskip("spikeinterface.extractors")
    worm, done = exported
    rec = rig.recording.open(worm.path)
    si = se.read_openephys(done.folder)
    assert si.get_num_segments() == 2 and si.get_sampling_frequency() == FS
    np.testing.assert_allclose(si.get_channel_gains(), worm.uv_per_count, rtol=1e-6)
    split = rec.runs[1, 0]
    for seg, rows in enumerate([slice(0, split), slice(split, None)]):
        uv = si.get_traces(segment_index=seg, return_in_uV=True)
        expected = rec.samples[rows].astype(np.float64) * worm.uv_per_count
        np.testing.assert_allclose(uv, expected, rtol=1e-6, atol=1e-4)  # float32
        assert si.get_times(segment_index=seg)[0] == pytest.approx(
            rec.sample_numbers()[rows][0] / FS
        )
    events = se.read_openephys_event(done.folder)
    found = np.concatenate(
        [events.get_events(channel_id="stimuli", segment_index=seg) for seg in range(2)]
    )
    assert found["time"] == pytest.approx(np.array(worm.onsets) / FS, abs=1e-9)
    assert found["duration"] == pytest.approx(worm.durations_s, abs=0.5 / FS)


def test_a_recording_without_gaps_is_hard_linked(tmp_path):
    worm = worm_recording(tmp_path / "rec", n_stimuli=3, gap=False)
    done = export_openephys(worm.path, tmp_path / "oe")
    [folder] = done.recordings
    dat = folder / "continuous" / STREAM_FOLDER / "continuous.dat"
    assert done.linked
    assert os.path.samefile(dat, worm.path / "samples.i16")
    reader = _reader(done.folder)
    raw = reader.get_analogsignal_chunk(0, 0, stream_index=0)
    np.testing.assert_array_equal(raw, rig.recording.open(worm.path).samples)


def test_across_filesystems_the_samples_are_copied(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm) to refuse a hard link")
    worm = worm_recording(tmp_path / "rec", n_stimuli=2, gap=False)
    out = shm / f"neurorig-test-oe-{os.getpid()}"
    try:
        done = export_openephys(worm.path, out)
        assert not done.linked
        [folder] = done.recordings
        dat = folder / "continuous" / STREAM_FOLDER / "continuous.dat"
        assert dat.read_bytes() == (worm.path / "samples.i16").read_bytes()
    finally:
        import shutil

        shutil.rmtree(out, ignore_errors=True)


def test_a_recording_with_no_stimuli_reads_with_empty_events(tmp_path):
    worm = worm_recording(tmp_path / "rec", n_stimuli=0, gap=False)
    done = export_openephys(worm.path, tmp_path / "oe")
    reader = _reader(done.folder)
    index = list(reader.header["event_channels"]["name"]).index("stimuli")
    assert reader.event_count(0, 0, index) == 0


def test_refusals_name_the_file_and_leave_nothing_behind(tmp_path):
    worm = worm_recording(tmp_path / "rec", n_stimuli=2, gap=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(OpenEphysExportError, match="full: not empty"):
        export_openephys(worm.path, tmp_path / "full")
    (tmp_path / "afile").write_text("")
    with pytest.raises(OpenEphysExportError, match="afile: an existing file"):
        export_openephys(worm.path, tmp_path / "afile")
    with pytest.raises(OpenEphysExportError, match="inside .*afile, which is a file"):
        export_openephys(worm.path, tmp_path / "afile" / "oe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "full", "rec"]
    (tmp_path / "empty").mkdir()
    export_openephys(worm.path, tmp_path / "empty")  # an empty folder is filled
    assert (tmp_path / "empty" / RECORD_NODE).is_dir()


def test_a_stimulus_without_duration_or_a_live_recording_is_refused(tmp_path):
    with RecordingWriter.create(
        tmp_path / "rec", n_channels=2, sample_rate_hz=1000.0,
        metadata={"acquisition": {"volts_per_count_nominal": 1e-7}},
    ) as writer:  # fmt: skip
        writer.append_samples(0, np.zeros((100, 2), np.int16))
        writer.append_event(10, "stim_delivered", amplitude_vpp=1.0, pair=0)
        writer.flush()
        with pytest.raises(OpenEphysExportError, match="still being recorded"):
            export_openephys(tmp_path / "rec", tmp_path / "oe")
    with pytest.raises(OpenEphysExportError, match="stimulus 1 .* has no duration_s"):
        export_openephys(tmp_path / "rec", tmp_path / "oe")
    assert not (tmp_path / "oe").exists()


def test_cli_exports_and_refuses_in_one_line(tmp_path):
    worm = worm_recording(tmp_path / "rec", n_stimuli=2, gap=False)

    def neurorig(*args):
        return subprocess.run(
            [sys.executable, "-m", "rig.cli", "export", *args],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip

    out = neurorig(str(worm.path), "--openephys", str(tmp_path / "oe"))
    assert out.returncode == 0, out.stderr
    assert "openephys:" in out.stdout and "hard-linked" in out.stdout
    again = neurorig(str(worm.path), "--openephys", str(tmp_path / "oe"))
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "not empty" in again.stderr
    missing = neurorig(str(tmp_path / "nope"), "--openephys", str(tmp_path / "x"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "not a neurorig recording" in missing.stderr
    nothing = neurorig(str(worm.path))
    assert nothing.returncode == 2 and "--openephys" in nothing.stderr
