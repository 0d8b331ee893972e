"""The live tracking saved into the recording (tracking.jsonl), and analysis from it.

A recording made by ``neurorig run --sim --camera sim`` holds every tracked
frame's band positions; ``neurorig analyze`` measures motion from them without
opening the video (shown by renaming the video away: same results, while
``--retrack`` then fails naming it), and its results equal re-tracking the
video within ``TOLERANCE_MM``. The file is written as frames are tracked:
a killed writer keeps what it was given (the flush timer), a torn last line
is ignored.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rig.recording
from analysis.displacement import displacement, electrode_regions_mm
from rig.recording import RecordingFormatError, RecordingWriter
from tests._cli import neurorig

# Saved tracking against re-tracking the lossless video: the live tracker saw
# the same frames, but its band identities and velocities carry over from the
# frames before the recording and it may skip a frame under load, and the
# rest positions come from the first frames it tracked. The tracking's own
# accuracy target is 0.05 mm (README, tracking_error_mm).
TOLERANCE_MM = 0.05

PROTOCOL = """format_version = 1
[protocol]
name = "saved tracking"
seed = 2
[[block]]
amplitude_vpp = [3.0, 4.0, 5.0, 6.0]
duration_ms = 4.0
inter_stimulus_interval_s = 0.6
"""


def _writer(folder: Path) -> RecordingWriter:
    return RecordingWriter.create(
        folder, n_channels=1, sample_rate_hz=1000.0, metadata={}
    )


def _frames(writer: RecordingWriter, n: int) -> None:
    for k in range(n):
        writer.append_frame(np.full((32, 32), 10 * k, np.uint8), None, k / 60)


def test_the_last_line_of_a_frame_wins_and_nan_is_null(tmp_path):
    writer = _writer(tmp_path / "r")
    _frames(writer, 3)
    info = {"px_per_mm": 3.2, "lens": None}
    writer.append_tracking([(0, 100, [1.0, np.nan], [0.5], 0.25)], info=info)
    writer.append_tracking(
        [(0, 100, [1.0, 2.0], [0.1], 0.2), (1, 117, [1.5, 2.5], [0.3], np.nan)]
    )
    writer.close()
    lines = (tmp_path / "r" / "tracking.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["positions_mm"] == [1.0, None]
    rec = rig.recording.open(tmp_path / "r")
    assert rec.metadata["tracking"] == {"file": "tracking.jsonl", **info}
    saved = rec.tracking
    assert saved.frame_index.tolist() == [0, 1]
    assert saved.sample.tolist() == [100, 117]
    np.testing.assert_array_equal(saved.positions_mm, [[1.0, 2.0], [1.5, 2.5]])
    np.testing.assert_array_equal(saved.region_displacement_mm, [[0.1], [0.3]])
    assert saved.body_displacement_mm[0] == 0.2
    assert np.isnan(saved.body_displacement_mm[1])


def test_a_torn_last_line_is_ignored_and_a_bad_line_is_named(tmp_path):
    writer = _writer(tmp_path / "r")
    _frames(writer, 2)
    writer.append_tracking([(0, None, [1.0], [0.0], 0.0)])
    writer.close()
    path = tmp_path / "r" / "tracking.jsonl"
    with path.open("a") as f:
        f.write('{"frame_index": 1, "sample": 5, "posi')
    rec = rig.recording.open(tmp_path / "r")
    assert rec.tracking.frame_index.tolist() == [0]
    assert "tracking.jsonl: ignored a partial last line" in rec.problems
    path.write_text(
        '{"frame_index": -1, "positions_mm": [], "region_displacement_mm": []}\n'
    )
    with pytest.raises(
        RecordingFormatError, match=r"tracking.jsonl: line 1 .*frame_index"
    ):
        _ = rig.recording.open(tmp_path / "r").tracking


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from rig.recording import RecordingWriter
    writer = RecordingWriter.create(sys.argv[1], n_channels=1, sample_rate_hz=1000.0,
                                    metadata={})
    rng = np.random.default_rng(1)
    for k in range(30):  # noise: the encoder's buffer fills, frames reach the file
        writer.append_frame(rng.integers(0, 255, (240, 320), dtype=np.uint8),
                            None, k / 60)
        writer.append_tracking([(k, 17 * k, [float(k), k + 10.0], [0.1 * k], 0.0)])
    print("handed", flush=True)
    time.sleep(60)
    """
)


def test_a_killed_recording_keeps_what_was_tracked(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert child.stdout.readline().strip() == "handed"
        time.sleep(0.3)  # no more appends: only the flush timer hands it over
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close()
    lines = (tmp_path / "r" / "tracking.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame_index"] for line in lines] == list(range(30))
    rec = rig.recording.open(tmp_path / "r")
    assert rec.crashed
    # The reader keeps only the frames the video holds (its encoder's buffer
    # may have died with it), each with its saved positions.
    saved = rec.tracking
    assert 0 < len(rec.frame_times) <= 30
    assert saved.frame_index.tolist() == list(range(len(rec.frame_times)))
    np.testing.assert_array_equal(saved.positions_mm[:, 0], saved.frame_index)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A real run on the simulated rig with its camera (4 stimuli, ~3 s)."""
    root = tmp_path_factory.mktemp("saved-tracking")
    protocol = root / "p.toml"
    protocol.write_text(PROTOCOL)
    run = neurorig(
        "run", str(protocol), "--sim", "--camera", "sim", "--out", str(root / "runs")
    )
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    return root, folder


def _analyze(folder: Path, out: Path, *extra: str) -> dict:
    done = neurorig("analyze", str(folder), "--json", str(out), "--quiet", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_the_recording_saves_every_recorded_frame_it_tracked(recorded):
    _, folder = recorded
    rec = rig.recording.open(folder)
    saved = rec.tracking
    assert saved is not None and saved.info["px_per_mm"] == 3.2
    # The tracking keeps up with a 60 fps camera: most frames are tracked
    # (the live tracker skips a frame rather than fall behind; on 2 cores
    # shared with the board's and camera's processes it may skip a few).
    assert saved.frame_index.size >= 0.75 * len(rec.frame_times)
    assert np.all(np.diff(saved.frame_index) > 0)
    # The saved displacement is the offline rule over the recording's tracked
    # frames (rest: its first frames tracked), to the file's 0.1 µm.
    regions = [tuple(r) for r in saved.info["regions_mm_from_head"]]
    assert regions == electrode_regions_mm(
        np.asarray(rec.metadata["geometry"]["pair_centres_m"]) * 1000
    )
    moved = displacement(saved.positions_mm, regions)
    np.testing.assert_allclose(saved.region_displacement_mm, moved.region_mm, atol=2e-4)
    np.testing.assert_allclose(saved.body_displacement_mm, moved.body_mm, atol=2e-4)


def test_analyze_uses_the_saved_tracking_and_never_opens_the_video(recorded):
    root, folder = recorded
    saved = _analyze(folder, root / "saved.json")
    assert saved["motion"]["tracked"] is True
    assert saved["motion"]["tracking"]["source"] == "saved"
    video = folder / "video.mkv"
    hidden = folder / "video.hidden"
    video.rename(hidden)  # nothing can open it now
    try:
        without_video = _analyze(folder, root / "without-video.json")
        assert without_video == saved
        # --retrack does open it: here it cannot, and says so in one line.
        retrack = neurorig("analyze", str(folder), "--retrack", "--quiet")
        assert retrack.returncode == 2
        assert retrack.stderr.strip().splitlines()[-1] == (
            f"neurorig: error: {video}: missing; the frames are read from it "
            "(renamed or moved? put it back)"
        )
    finally:
        hidden.rename(video)


def test_saved_tracking_equals_retracking_within_the_tolerance(recorded):
    root, folder = recorded
    saved = _analyze(folder, root / "saved-2.json")
    again = _analyze(folder, root / "retracked.json", "--retrack")
    assert again["motion"]["tracking"] == {
        "source": "video",
        "n_frames": saved["motion"]["tracking"]["n_frames"],
        "n_frames_tracked": saved["motion"]["tracking"]["n_frames"],
        "reason": "--retrack asked for it",
    }
    pairs = list(zip(saved["stimuli"], again["stimuli"], strict=True))
    measured = [
        (a, b)
        for a, b in pairs
        if a["peak_displacement_mm"] is not None
        and b["peak_displacement_mm"] is not None
    ]
    # Twitches were measured (all 4 on an idle machine; under heavy load the
    # optical sync may prove fewer frames, and a window without proven frames
    # has no measure either way).
    assert measured
    for a, b in measured:
        assert a["peak_displacement_mm"] == pytest.approx(
            b["peak_displacement_mm"], abs=TOLERANCE_MM
        )
        np.testing.assert_allclose(
            a["region_peak_displacement_mm"],
            b["region_peak_displacement_mm"],
            atol=TOLERANCE_MM,
        )
    # Everything else is the electrophysiology: identical.
    for a, b in pairs:
        assert a["latency_s"] == b["latency_s"]


_number = st.one_of(
    st.none(),
    st.integers(-1000, 1000),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 4)),  # as written
)


def _as_arrays(records):
    """tracking lines (parsed by json) as the columns the Numba parser gives."""

    def row(values):
        return [math.nan if v is None else float(v) for v in values]

    width = len(records[0]["positions_mm"]) if records else 0
    n_regions = len(records[0]["region_displacement_mm"]) if records else 0
    return (
        np.array([r["frame_index"] for r in records], dtype=np.int64),
        np.array(
            [-1 if r["sample"] is None else r["sample"] for r in records],
            dtype=np.int64,
        ),
        np.array([row(r["positions_mm"]) for r in records]).reshape(-1, width),
        np.array([row(r["region_displacement_mm"]) for r in records]).reshape(
            -1, n_regions
        ),
        np.array(row([r["body_displacement_mm"] for r in records])),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 12),  # frame_index, repeats: the last line wins
            st.one_of(st.none(), st.integers(0, 10**9)),  # sample
            st.integers(0, 3),  # bands
            st.lists(_number, min_size=2, max_size=2),  # regions
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            st.integers(1, 4),  # how many bands this row has: ragged
        ),
        max_size=25,
    ),
    st.integers(0, 14),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_reading_the_file_at_once_equals_reading_it_line_by_line(
    tmp_path_factory, rows, n_frames, ragged, compact, data
):
    # The at-once reader (the Numba parser for lines as the writer writes
    # them, compact; else one JSON parse, column checks) is the fast path;
    # the line-by-line reader is the reference: same arrays, every input.
    from rig.recording import _reader
    from rig.recording._tracking_kernel import read_tracking_bytes

    lines = []
    for index, sample, bands, regions, body, own_bands in rows:
        width = own_bands if ragged else bands
        positions = data.draw(st.lists(_number, min_size=width, max_size=width))
        lines.append(
            json.dumps(
                {
                    "frame_index": index,
                    "sample": sample,
                    "positions_mm": positions,
                    "region_displacement_mm": regions,
                    "body_displacement_mm": body,
                },
                separators=(",", ":") if compact else None,
            )
        )
    path = tmp_path_factory.mktemp("t") / "tracking.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    fast = _reader._read_tracking_at_once(path, n_frames, {})
    widths = {len(json.loads(line)["positions_mm"]) for line in lines}
    assert (fast is None) == (len(widths) > 1)  # ragged rows: line by line
    parsed = read_tracking_bytes(path.read_bytes())
    if parsed is not None:  # the Numba parser read it: as JSON does, bit for bit
        assert compact and len(widths) == 1
        records = [json.loads(line) for line in lines]
        as_json = _as_arrays(records)
        for got, want in zip(parsed, as_json, strict=True):
            assert got.dtype == want.dtype and got.shape == want.shape
            assert got.tobytes() == want.tobytes()  # NaN, -0.0 alike
    slow = _reader._read_tracking_by_line(path, n_frames, {}, [])
    if fast is not None:
        for name in ("frame_index", "sample", "positions_mm", "region_displacement_mm",
                     "body_displacement_mm"):  # fmt: skip
            assert getattr(fast, name).dtype == getattr(slow, name).dtype
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))


def test_the_writers_lines_are_read_by_the_numba_parser_as_line_by_line(tmp_path):
    # The writer's own lines (compact, 4 decimals, null for NaN) take the fast
    # path; a line in another layout sends the whole file back to JSON.
    from rig.recording import _reader
    from rig.recording._tracking_kernel import read_tracking_bytes
    from rig.recording._writer import _tracking_line

    rng = np.random.default_rng(3)
    rows = []
    for k in range(40):
        positions = np.cumsum(rng.uniform(0.5, 1.5, 12)) * rng.choice([1, -1e-4])
        positions[rng.random(12) < 0.1] = np.nan
        sample = None if k % 7 == 0 else 1000 * k
        rows.append((k % 30, sample, positions, rng.normal(size=4), rng.normal()))
    text = "".join(_tracking_line(row) for row in rows)
    path = tmp_path / "tracking.jsonl"
    path.write_text(text)
    parsed = read_tracking_bytes(path.read_bytes())
    assert parsed is not None
    records = [json.loads(line) for line in text.splitlines()]
    for got, want in zip(parsed, _as_arrays(records), strict=True):
        assert got.tobytes() == want.tobytes()
    fast = _reader._read_tracking_at_once(path, 25, {})
    slow = _reader._read_tracking_by_line(path, 25, {}, [])
    for name in ("frame_index", "sample", "positions_mm", "region_displacement_mm",
                 "body_displacement_mm"):  # fmt: skip
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert np.isnan(fast.positions_mm).any() and (fast.sample == -1).any()
    spaced = text.replace('"sample":', '"sample": ', 1)  # json.dumps' default
    assert read_tracking_bytes(spaced.encode()) is None
    assert read_tracking_bytes(text.replace("\n", "\r\n").encode()) is None
    assert read_tracking_bytes(text.encode() + b'{"frame_index":3') is None  # torn
