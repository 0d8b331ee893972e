"""Camera sources: a real video file through OpenCV, and the missing-camera errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from firmware_bridge.sim import WormModel, write_sim_video
from rig.core.camera import CameraError, OpenCVCamera, open_camera


def test_video_file_plays_every_frame_losslessly(tmp_path):
    path = tmp_path / "worm.mkv"
    write_sim_video(str(path), WormModel(seed=3), fps=30.0, duration_s=0.4)
    camera = OpenCVCamera(str(path), realtime=False)
    frames, times = [], []
    done = threading.Event()

    def on_frame(frame, t):
        frames.append(frame)
        times.append(t)
        if len(frames) == 12:
            done.set()

    camera.start(on_frame)
    assert done.wait(10)
    camera.stop()
    assert len(frames) == 12 and frames[0].shape == (480, 640)
    assert frames[0].dtype == np.uint8 and np.all(np.diff(times) >= 0)
    assert camera.fps == pytest.approx(30.0)


def test_missing_cameras_are_named():
    with pytest.raises(CameraError, match="does not exist"):
        open_camera("/nonexistent/video.avi")
    with pytest.raises(CameraError, match="cannot open camera index 57"):
        open_camera("57")
    with pytest.raises(CameraError, match="needs the simulated rig"):
        open_camera("sim")
