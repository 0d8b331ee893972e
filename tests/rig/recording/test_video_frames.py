"""Any frame of a recording's video, by seeking: equal to decoding in order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rig.recording._reader import VideoFrames


@pytest.fixture
def video(tmp_path):
    """120 FFV1 frames (the recorder's codec), each different from the others."""
    path = tmp_path / "video.mkv"
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"FFV1"), 60.0, (64, 48), isColor=False
    )
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64), dtype=np.uint8) for _ in range(120)]
    for k, frame in enumerate(frames):
        frame[0, :8] = k  # a frame number in its first pixels
        writer.write(frame)
    writer.release()
    return VideoFrames(path, len(frames)), frames


@pytest.mark.parametrize("index", [0, 1, 59, 60, 118, 119, -1, -120])
def test_any_frame_by_seeking_equals_the_frame_written(video, index):
    frames, written = video
    np.testing.assert_array_equal(frames[index], written[index])


def test_seeking_equals_decoding_in_order(video):
    frames, _ = video
    in_order = list(frames)
    for k in (3, 77, 119):
        np.testing.assert_array_equal(frames[k], in_order[k])


def test_a_frame_outside_the_video_is_named(video):
    frames, _ = video
    with pytest.raises(IndexError, match="frame 120 out of range"):
        frames[120]
