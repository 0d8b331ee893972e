"""Camera sources: an OpenCV device or video file, or the simulated rig's camera.

A source calls ``on_frame(frame, host_time_s)`` from its own thread for every
frame (grayscale uint8, ``(height, width)``); the Session puts frames on the device
clock with FrameClock. Frames carry no sample number: that is the point of the
board's camera-trigger events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rig.core._camera_source import CameraError, FrameCallback, ThreadedCamera
from rig.core.stream_camera import StreamCamera, is_stream

__all__ = [
    "CameraError",
    "FrameCallback",
    "OpenCVCamera",
    "ThreadedCamera",
    "open_camera",
]


class OpenCVCamera(ThreadedCamera):
    """Frames from ``cv2.VideoCapture`` (a device index or a video file).

    A file is played at its own frame rate (``realtime=True``) so it behaves like
    a camera, or as fast as it decodes.
    """

    def __init__(self, source: int | str, *, realtime: bool = True) -> None:
        import cv2

        self._cv2 = cv2
        if isinstance(source, str) and not Path(source).exists():
            raise CameraError(f"video file {source!r} does not exist")
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            what = f"camera index {source}" if isinstance(source, int) else source
            raise CameraError(
                f"cannot open {what}: no such camera or unreadable video. "
                "Give a device index (0, 1, ...), a video file, or 'sim'."
            )
        super().__init__(source)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0
        self.realtime = realtime and isinstance(source, str)

    def _release(self) -> None:
        self.capture.release()

    def _loop(self, on_frame: FrameCallback) -> None:
        cv2 = self._cv2
        period = 1.0 / self.fps
        next_due = time.monotonic()
        while not self._stop.is_set():
            ok, frame = self.capture.read()
            if not ok:
                if isinstance(self.source, int):
                    self.error = CameraError(f"camera {self.source} stopped delivering")
                return  # end of a file
            if frame.ndim == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if self.realtime:
                next_due += period
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            self._deliver(on_frame, frame)


def open_camera(spec: str) -> Any:
    """A camera for ``spec``: an index, a file, a live YUV4MPEG2 stream.

    ``spec``: an index (``"0"``), a video file, or a named pipe or Unix socket
    carrying live YUV4MPEG2 video. (``"sim"``, the simulated rig's camera,
    comes with the simulated rig from ``rig.open_rig``.)
    """
    if spec == "sim":
        raise CameraError("--camera sim needs the simulated rig (--sim)")
    if spec.isdigit():
        return OpenCVCamera(int(spec))
    if is_stream(spec):
        return StreamCamera(spec)
    return OpenCVCamera(spec)
