"""Video storage choices: lossless FFV1 (default), lossy Motion JPEG, a crop.

Chosen in the rig file's ``[video]`` or with ``--video-codec``/``--video-crop``;
a bad value is refused in one line naming the field and what is allowed. The
crop is in the metadata, tracking stays in the camera image's pixels, and a
cropped or lossy video still re-tracks (``--retrack``) to the saved tracking's
results. The free-space guard starts from the chosen storage's measured rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rig.recording
from rig.recording import RecordingWriter, VideoStorage, VideoStorageError
from rig.recording._video import BYTES_PER_PIXEL, VideoFile
from rig.rig_file import RigFileError, load_rig_file
from tests._cli import neurorig
from tests.rig.test_saved_tracking import PROTOCOL, TOLERANCE_MM


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[video]\ncodec = "h264"\n',
            "video.codec = 'h264': allowed 'ffv1', 'mjpeg' (ffv1: lossless, the "
            "default; mjpeg: lossy, smaller)",
        ),
        (
            "[video]\ncrop_px = [300, 100, 0, 640]\n",
            "video.crop_px = [300, 100, 0, 640]: allowed [top, bottom, left, "
            "right], whole pixels of the camera image, top < bottom and left < "
            "right, at least 16 px each way",
        ),
        (
            "[video]\nquality = 90\n",
            "video.quality is not a key of [video] (allowed: codec, crop_px)",
        ),
    ],
)
def test_a_bad_rig_file_value_is_refused_naming_it(tmp_path, table, message):
    path = tmp_path / "rig.toml"
    path.write_text(table)
    with pytest.raises(RigFileError) as refused:
        load_rig_file(path)
    assert str(refused.value) == f"{path}: {message}"


def test_the_rig_file_chooses_the_storage(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text('[video]\ncodec = "mjpeg"\ncrop_px = [170, 310, 0, 640]\n')
    assert load_rig_file(path).video == VideoStorage("mjpeg", (170, 310, 0, 640))
    assert load_rig_file(None).video == VideoStorage("ffv1", None)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--video-codec", "av1"], "--video-codec = 'av1': allowed 'ffv1', 'mjpeg'"),
        (["--video-crop", "10,20,x,40"], "--video-crop = '10,20,x,40': allowed"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(tmp_path, option, message):
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL)
    done = neurorig("run", str(protocol), "--sim", *option)
    assert done.returncode == 2
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("neurorig: error")]
    assert len(errors) == 1 and errors[0].startswith(f"neurorig: error: {message}")


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, (96, 128), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("codec", ["ffv1", "mjpeg"])
def test_a_cropped_video_holds_the_region_and_seeks_exactly(tmp_path, codec):
    frames = _frames(30)
    storage = VideoStorage(codec, (16, 80, 32, 112))
    path = tmp_path / "v.mkv"
    video = VideoFile(path, frames[0].shape, 60.0, storage)
    for frame in frames:
        video.write(frame)
    video.release()
    reader = rig.recording.VideoFrames(path, len(frames))
    in_order = list(reader)
    assert in_order[0].shape == (64, 80)
    for k in (0, 13, 29):  # every frame a key frame: the seek is exact
        np.testing.assert_array_equal(reader[k], in_order[k])
    if codec == "ffv1":  # lossless: the very pixels of the region
        np.testing.assert_array_equal(in_order[7], frames[7][16:80, 32:112])
    else:  # lossy: close, not equal
        error = np.abs(in_order[7].astype(int) - frames[7][16:80, 32:112])
        assert 0 < error.mean() < 40


def test_a_crop_outside_the_image_is_refused_naming_it(tmp_path):
    with pytest.raises(VideoStorageError, match=r"video.crop_px = \[200, 300, 0, 64\]"):
        VideoFile(
            tmp_path / "v.mkv", (96, 128), 60.0, VideoStorage("ffv1", (200, 300, 0, 64))
        )


def test_the_guard_starts_from_the_storage_rate_and_the_metadata_says_it(tmp_path):
    storage = VideoStorage("mjpeg", (16, 80, 0, 128))
    writer = RecordingWriter.create(
        tmp_path / "r", n_channels=4, sample_rate_hz=30000.0, metadata={}, video=storage
    )
    samples_rate = 2 * 4 * 30000.0
    assert writer.data_rate_bytes_per_s == samples_rate
    writer.append_frame(_frames(1)[0], None, 0.0)
    video_rate = BYTES_PER_PIXEL["mjpeg"] * 64 * 128 * 60.0
    assert writer.data_rate_bytes_per_s == pytest.approx(samples_rate + video_rate)
    writer.close()
    video = rig.recording.open(tmp_path / "r").metadata["video"]
    assert video["codec"] == "MJPG" and video["lossless"] is False
    assert video["crop_px"] == [16, 80, 0, 128]
    assert (video["width"], video["height"]) == (128, 64)
    assert (video["camera_width"], video["camera_height"]) == (128, 96)


def test_a_cropped_lossy_recording_tracks_in_camera_pixels(tmp_path):
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL)
    run = neurorig(
        "run", str(protocol), "--sim", "--camera", "sim", "--out", str(tmp_path),
        "--video-codec", "mjpeg", "--video-crop", "170,310,0,640",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    rec = rig.recording.open(folder)
    assert rec.metadata["video"]["crop_px"] == [170, 310, 0, 640]
    assert rec.frames[0].shape == (140, 640)
    # The tracking's geometry is the camera image's, not the crop's.
    assert rec.tracking.info["origin_px"][0] == 40.0

    def analyze(name, *extra):
        done = neurorig(
            "analyze", str(folder), "--json", str(tmp_path / name), "--quiet", *extra
        )
        assert done.returncode == 0, done.stderr
        return json.loads((tmp_path / name).read_text())

    saved, again = analyze("saved.json"), analyze("again.json", "--retrack")
    assert again["motion"]["tracking"]["source"] == "video"
    pairs = [
        (a, b)
        for a, b in zip(saved["stimuli"], again["stimuli"], strict=True)
        if b["peak_displacement_mm"] is not None
    ]
    assert len(pairs) >= 3
    for a, b in pairs:
        if a["peak_displacement_mm"] is None:
            # Under load the live tracker skips frames; a hole over a twitch
            # leaves it unmeasured, and says so (once in a full run beside a
            # benchmark, a peak read across one was 0.29 against 0.36 mm).
            assert "no tracked frame for" in a["motion_note"]
            continue
        assert a["peak_displacement_mm"] == pytest.approx(
            b["peak_displacement_mm"], abs=TOLERANCE_MM
        )


@pytest.mark.parametrize("codec", ["ffv1", "mjpeg"])
def test_any_frame_seeks_to_the_very_pixels_of_a_sequential_decode(tmp_path, codec):
    # PyAV seeks by the frame's presentation timestamp: one seek, one decode.
    # Every frame different, so landing one frame off cannot pass.
    pytest.importorskip("av")
    frames = _frames(90)
    path = tmp_path / "v.mkv"
    video = VideoFile(path, frames[0].shape, 60.0, VideoStorage(codec, None))
    for frame in frames:
        video.write(frame)
    video.release()
    reader = rig.recording.VideoFrames(path, len(frames))
    in_order = list(reader)
    assert len(in_order) == 90
    if codec == "ffv1":
        np.testing.assert_array_equal(np.stack(in_order), np.stack(frames))
    picks = [0, 89, -1, *np.random.default_rng(7).integers(1, 89, 12).tolist()]
    for k in picks:
        np.testing.assert_array_equal(reader[k], in_order[k])
    # The OpenCV fallback (no av installed) reads the same pixels.
    fallback = rig.recording.VideoFrames(path, len(frames))
    fallback._pyav = False
    np.testing.assert_array_equal(np.stack(list(fallback)), np.stack(in_order))
    for k in picks[:5]:
        np.testing.assert_array_equal(fallback[k], in_order[k])
    with pytest.raises(IndexError, match="frame 90 out of range"):
        reader[90]
