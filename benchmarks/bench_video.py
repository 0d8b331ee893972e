"""Video storage: megabytes per minute of each storage choice, and seeking.

The simulated rig's worm (640×480, 60 fps, a stimulus a second so it twitches,
with its frame noise), 10 s (quick: 3 s) written through the recorder's own
``VideoFile`` for each storage choice (``rig.recording.VideoStorage``):
lossless FFV1 (the default), lossy Motion JPEG, and each cropped to a band
around the raceway (rows 176–304: the worm's 8 mm body with room to bend).
Figures:

- ``video_mb_per_min_<codec>[_crop]``: the file's size per minute of video;
- ``video_bytes_per_pixel_<codec>``: the same per pixel per frame (what the
  free-space guard and the GUI's warning assume before they measure);
- ``video_encode_fps_<codec>``: frames encoded per second (one core);
- ``video_seek_ms_median`` / ``_max``: ``frames[k]`` (the reader's
  ``VideoFrames``, one seek and one decode) for 20 random k in a 1-minute
  FFV1 video (quick: 20 s).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

CROP = (176, 304, 0, 640)  # top, bottom, left, right: the raceway's band


def _frames(seconds: float, fps: float = 60.0):
    from firmware_bridge.sim.camera import render_worm_frame
    from firmware_bridge.sim.worm import WormModel

    model = WormModel(seed=3, fs_hz=30_000.0)
    n = round(seconds * fps)
    for k in range(n):
        sample = round(k * model.fs_hz / fps)
        if k % round(fps) == 5:
            model.stimulate(sample, amplitude_vpp=5.0, duration_s=0.004)
        yield render_worm_frame(
            model.segment_boundaries_m(sample), frame_index=k, noise_seed=3
        )


def run(quick: bool = False) -> dict[str, float]:
    from rig.recording._reader import VideoFrames
    from rig.recording._video import VideoFile, VideoStorage

    seconds = 3.0 if quick else 10.0
    frames = list(_frames(seconds))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("ffv1", "mjpeg"):
            for crop in (None, CROP):
                storage = VideoStorage(codec, crop)
                path = Path(tmp) / f"{codec}-{crop is not None}.mkv"
                video = VideoFile(path, frames[0].shape, 60.0, storage)
                started = time.perf_counter()
                for frame in frames:
                    video.write(frame)
                video.release()
                spent = time.perf_counter() - started
                name = codec + ("_crop" if crop else "")
                size = path.stat().st_size
                out[f"video_mb_per_min_{name}"] = size / 1e6 * 60.0 / seconds
                if crop is None:
                    pixels = frames[0].size * len(frames)
                    out[f"video_bytes_per_pixel_{codec}"] = size / pixels
                    out[f"video_encode_fps_{codec}"] = len(frames) / spent
        # Seeking: a minute of video, random frames.
        long_s = 20.0 if quick else 60.0
        path = Path(tmp) / "long.mkv"
        video = VideoFile(path, frames[0].shape, 60.0)
        n = round(long_s * 60)
        for k in range(n):
            video.write(frames[k % len(frames)])
        video.release()
        reader = VideoFrames(path, n)
        spent_s = []
        for k in np.random.default_rng(1).integers(0, n, 20):
            started = time.perf_counter()
            reader[int(k)]
            spent_s.append(time.perf_counter() - started)
        out["video_seek_ms_median"] = float(np.median(spent_s)) * 1000
        out["video_seek_ms_max"] = max(spent_s) * 1000
    return out
