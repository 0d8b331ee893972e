"""The recording's video: FFV1 in Matroska through OpenCV, with its errors surfaced.

How the video is stored is a choice (``VideoStorage``: the rig file's
``[video]``, ``neurorig run --video-codec/--video-crop``): lossless FFV1 (the
default, the archival one), lossy Motion JPEG (every frame a JPEG: intra-only
like FFV1, so every frame is a key frame and a seek is exact), and either of
them cropped to a region of interest around the raceway. Each codec's bytes per
pixel were measured on the simulated rig's camera (``benchmarks/run.py video``,
docs/recording-format.md): the free-space guard and the GUI's low-disk warning
use that rate for the storage chosen, not a fixed guess.

OpenCV's FFmpeg writer does not raise. On a full disk it prints a warning and
``VideoWriter.write`` returns False (OpenCV >= 5; older versions return None),
some frames late: FFmpeg buffers up to 256 KiB before it writes. So a write that
returns False is a failure, and where ``write`` returns nothing the file is
watched instead: frames keep coming, the file stops growing, the disk is full.

Every frame is a key frame (GOP 1, intra-only FFV1, the archival setting): the
Matroska muxer then closes a cluster at every frame and writes it out, so a
killed recording loses the last cluster and FFmpeg's 256 KiB buffer (a few
frames) instead of up to 12 frames (OpenCV's default GOP of 12, measured); a
frame is found by one seek and one decode; the file is 0.2 % larger
(640×480, measured).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig.recording._files import really_free_bytes

NEARLY_FULL_BYTES = 4 << 20  # FFmpeg's buffer is 256 KiB: a failed flush leaves less
STALL_FRAMES = 60  # frames handed over without the file growing, on a full disk


class VideoWriteError(OSError):
    """The video writer failed; ``errno`` is ENOSPC when the disk is full."""


# Codec name (the rig file's and the CLI's) -> (FourCC, lossless). The encoders
# are those the installed OpenCV wheel's FFmpeg writes (checked: FFV1, MJPG,
# mp4v, VP8, VP9 open; H.264, HEVC and AV1 do not); MJPG is intra-only, so
# every frame stays a key frame, a seek stays exact and a kill loses no more.
CODECS: dict[str, tuple[str, bool]] = {"ffv1": ("FFV1", True), "mjpeg": ("MJPG", False)}
# Bytes per pixel per frame, measured on the simulated rig's worm at 640×480,
# 60 fps, 10 s through VideoFile (benchmarks/bench_video.py; MB/min in
# docs/recording-format.md). The guard's prior: it measures the real rate as
# the recording grows and takes the larger.
BYTES_PER_PIXEL = {"ffv1": 0.50, "mjpeg": 0.051}


class VideoStorageError(ValueError):
    """A video storage choice that is not allowed (names the field)."""


@dataclass(frozen=True, slots=True)
class VideoStorage:
    """How a recording stores its video: ``codec`` (``"ffv1"`` lossless, the
    default, or ``"mjpeg"`` lossy) and ``crop_px`` ``(top, bottom, left,
    right)``: the half-open rows and columns of the camera image kept (None:
    the whole image). Tracking and every coordinate in the metadata stay in
    the full image's pixels; the crop's ``(left, top)`` is its offset."""

    codec: str = "ffv1"
    crop_px: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        check_video_storage(self.codec, self.crop_px)

    @property
    def lossless(self) -> bool:
        """Whether the frames decode exactly as the camera gave them."""
        return CODECS[self.codec][1]

    def stored_shape(self, height: int, width: int) -> tuple[int, int]:
        """The stored frame's (height, width) for a camera image this size."""
        if self.crop_px is None:
            return height, width
        top, bottom, left, right = self.crop_px
        return min(bottom, height) - top, min(right, width) - left

    def bytes_per_s(self, height: int, width: int, fps: float) -> float:
        """The video's expected data rate (measured bytes per pixel)."""
        h, w = self.stored_shape(height, width)
        return BYTES_PER_PIXEL[self.codec] * h * w * fps

    def describe(self) -> dict[str, Any]:
        """The metadata's ``video`` fields for this choice."""
        return {
            "codec": CODECS[self.codec][0],
            "lossless": self.lossless,
            "crop_px": None if self.crop_px is None else list(self.crop_px),
        }


def check_video_storage(
    codec: Any,
    crop_px: Any,
    *,
    codec_field: str = "video.codec",
    crop_field: str = "video.crop_px",
) -> tuple[int, int, int, int] | None:
    """Refuse a codec or crop that is not allowed, in one line naming the
    field as the user gave it; the crop as a tuple."""
    if codec not in CODECS:
        raise VideoStorageError(
            f"{codec_field} = {codec!r}: allowed {', '.join(map(repr, CODECS))} "
            "(ffv1: lossless, the default; mjpeg: lossy, smaller)"
        )
    if crop_px is None:
        return None
    ok = (
        isinstance(crop_px, list | tuple)
        and len(crop_px) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) for v in crop_px)
        and 0 <= crop_px[0] < crop_px[1] <= 100_000
        and 0 <= crop_px[2] < crop_px[3] <= 100_000
        and crop_px[1] - crop_px[0] >= 16
        and crop_px[3] - crop_px[2] >= 16
    )
    if not ok:
        raise VideoStorageError(
            f"{crop_field} = {crop_px!r}: allowed [top, bottom, left, right], "
            "whole pixels of the camera image, top < bottom and left < right, at "
            "least 16 px each way"
        )
    return (crop_px[0], crop_px[1], crop_px[2], crop_px[3])


class VideoFile:
    """A grayscale video (FFV1 unless ``storage`` says otherwise) opened at its
    first frame; ``shape`` is the camera's image, cropped as ``storage`` says."""

    def __init__(
        self,
        path: Path,
        shape: tuple[int, ...],
        fps: float,
        storage: VideoStorage | None = None,
    ) -> None:
        import cv2

        self.path = path
        self.storage = storage or VideoStorage()
        self.camera_shape = (int(shape[0]), int(shape[1]))
        self.height, self.width = self.storage.stored_shape(*self.camera_shape)
        if self.height <= 0 or self.width <= 0:
            raise VideoStorageError(
                f"video.crop_px = {list(self.storage.crop_px or ())}: outside the "
                f"camera's {shape[1]}×{shape[0]} image; allowed a region inside it"
            )
        self.fps = fps
        fourcc = CODECS[self.storage.codec][0]
        params = [cv2.VIDEOWRITER_PROP_IS_COLOR, 0]
        gop = getattr(cv2, "VIDEOWRITER_PROP_GOP_SIZE", None)
        if gop is None:  # OpenCV < 5 names it KEY_INTERVAL
            gop = getattr(cv2, "VIDEOWRITER_PROP_KEY_INTERVAL", None)
        if gop is not None:
            params += [gop, 1]
        self._writer: Any = cv2.VideoWriter(
            str(path),
            cv2.CAP_FFMPEG,
            cv2.VideoWriter.fourcc(*fourcc),
            fps,
            (self.width, self.height),
            params,
        )
        if not self._writer.isOpened():
            self._writer.release()
            self._writer = None
            problem = self.disk_problem()
            if problem is not None:
                raise problem
            raise VideoWriteError(
                errno.EIO, f"cannot open a {fourcc} video writer at {path}"
            )
        self.n_written = 0
        self._size = 0
        self._frames_at_size = 0

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame; raise VideoWriteError if the writer failed."""
        if self._writer is None:
            raise VideoWriteError(errno.EIO, f"{self.path} is closed")
        crop = self.storage.crop_px
        if crop is not None:
            frame = np.ascontiguousarray(frame[crop[0] : crop[1], crop[2] : crop[3]])
        result = self._writer.write(frame)
        self.n_written += 1
        if result is False:  # OpenCV >= 5 says so
            raise self.disk_problem() or VideoWriteError(
                errno.EIO,
                f"the video writer failed on frame {self.n_written - 1} of "
                f"{self.path} (OpenCV gives no reason)",
            )
        self.check_growth()

    def check_growth(self) -> None:
        """Raise if frames keep coming, the file does not grow and the disk is full."""
        size = self.size()
        if size != self._size:
            self._size, self._frames_at_size = size, self.n_written
        elif self.n_written - self._frames_at_size >= STALL_FRAMES:
            problem = self.disk_problem()
            if problem is not None:
                raise problem

    def disk_problem(self) -> VideoWriteError | None:
        """A disk-full error naming the video if its filesystem is (nearly) full."""
        free = really_free_bytes(self.path.parent)
        if free >= NEARLY_FULL_BYTES:
            return None
        return VideoWriteError(
            errno.ENOSPC,
            f"the video writer could not write {self.path.name} "
            f"({free} bytes free on its disk)",
            str(self.path),
        )

    def size(self) -> int:
        """Bytes of the file on disk now."""
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def release(self) -> None:
        """Finish the file (cues, duration); idempotent."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.release()

    @property
    def is_open(self) -> bool:
        """Whether frames can still be written."""
        return self._writer is not None


def count_video_frames(path: Path) -> int:
    """Frames the file really holds, counted without decoding them.

    Reads the container's packets (OpenCV's raw-stream mode): a frame whose
    packet was cut short by a kill is not counted, as it could not be decoded
    (checked against decoding at every cut of a test file).
    """
    import cv2

    if not path.exists() or path.stat().st_size == 0:
        return 0
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    try:
        if not capture.isOpened():
            return 0
        n = 0
        while capture.grab():
            n += 1
        return n
    finally:
        capture.release()
