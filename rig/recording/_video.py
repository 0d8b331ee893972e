"""The recording's video: FFV1 in Matroska through OpenCV, with its errors surfaced.

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
from pathlib import Path
from typing import Any

import numpy as np

from rig.recording._files import really_free_bytes

NEARLY_FULL_BYTES = 4 << 20  # FFmpeg's buffer is 256 KiB: a failed flush leaves less
STALL_FRAMES = 60  # frames handed over without the file growing, on a full disk


class VideoWriteError(OSError):
    """The video writer failed; ``errno`` is ENOSPC when the disk is full."""


class VideoFile:
    """An FFV1 grayscale video opened at its first frame."""

    def __init__(self, path: Path, shape: tuple[int, ...], fps: float) -> None:
        import cv2

        self.path = path
        self.height, self.width = int(shape[0]), int(shape[1])
        self.fps = fps
        params = [cv2.VIDEOWRITER_PROP_IS_COLOR, 0]
        gop = getattr(cv2, "VIDEOWRITER_PROP_GOP_SIZE", None)
        if gop is None:  # OpenCV < 5 names it KEY_INTERVAL
            gop = getattr(cv2, "VIDEOWRITER_PROP_KEY_INTERVAL", None)
        if gop is not None:
            params += [gop, 1]
        self._writer: Any = cv2.VideoWriter(
            str(path),
            cv2.CAP_FFMPEG,
            cv2.VideoWriter.fourcc(*"FFV1"),
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
                errno.EIO, f"cannot open a lossless FFV1 video writer at {path}"
            )
        self.n_written = 0
        self._size = 0
        self._frames_at_size = 0

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame; raise VideoWriteError if the writer failed."""
        if self._writer is None:
            raise VideoWriteError(errno.EIO, f"{self.path} is closed")
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
