"""A live camera stream from a named pipe or a Unix socket: YUV4MPEG2 video, read
as grayscale.

YUV4MPEG2 ("y4m") is the plain uncompressed stream ffmpeg writes with
``-f yuv4mpegpipe`` (into a named pipe made with ``mkfifo``) and
``neurorig sim --camera-socket PATH`` serves: one header line
(``YUV4MPEG2 W640 H480 F60:1 ... C<colour space>``), then per frame a ``FRAME``
line and the raw planes, luma first. The luma plane *is* the grayscale image, so
a frame costs one copy and no conversion.

A ``FRAME`` line may carry parameters; ``Xsequence=N`` (as ``neurorig sim
--camera-socket`` sends) is the camera's own frame number, handed on as
``frame_number`` for the optical sync to cross-check. Other parameters are
ignored.

OpenCV can read y4m too, but it reads ahead to probe the stream when opened,
which blocks until frames flow; a hardware-triggered camera sends none until
the board triggers it, after the session has started. Reading the stream here
opens at once and never reads ahead.
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time

import numpy as np

from rig.core._camera_source import CameraError, FrameCallback, ThreadedCamera

# How long a stream may stay silent after it is opened before it is refused.
OPEN_TIMEOUT_S = 5.0
# Bytes per pixel of each 8-bit colour space (all planes); luma comes first.
BYTES_PER_PIXEL = {
    "mono": 1.0, "420": 1.5, "420jpeg": 1.5, "420paldv": 1.5, "420mpeg2": 1.5,
    "422": 2.0, "444": 3.0,
}  # fmt: skip
_POLL_S = 0.1  # how often a reader waiting for frames checks for stop()
MAX_LINE_BYTES = 1024
READ_CHUNK_BYTES = 1 << 20


def is_stream(path: str) -> bool:
    """Whether ``path`` is a named pipe (FIFO) or a Unix socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def parse_y4m_header(line: bytes) -> tuple[int, int, float, str]:
    """``(width_px, height_px, fps, colour space)`` of a YUV4MPEG2 header line."""
    words = line.decode("ascii", "replace").split()
    if not words or words[0] != "YUV4MPEG2":
        raise CameraError(
            f"not a YUV4MPEG2 stream (header {line[:40]!r}); the stream must "
            "carry y4m video, e.g. from ffmpeg -f yuv4mpegpipe or neurorig sim --camera-socket"
        )
    fields = {w[0]: w[1:] for w in words[1:]}
    try:
        width, height = int(fields["W"]), int(fields["H"])
    except (KeyError, ValueError):
        width = height = 0
    if width <= 0 or height <= 0:
        raise CameraError(f"y4m header {line!r} has no valid W and H")
    num, _, den = fields.get("F", "0:1").partition(":")
    try:  # nominal only: frames come when they come
        fps = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        fps = 0.0
    colour = fields.get("C", "420")
    if colour not in BYTES_PER_PIXEL:
        raise CameraError(
            f"y4m colour space C{colour} is not supported; allowed (8-bit): "
            f"{', '.join(BYTES_PER_PIXEL)} (ffmpeg: -pix_fmt gray or yuv420p)"
        )
    return width, height, fps, colour


def frame_sequence(line: bytes) -> int | None:
    """The camera's frame number on a y4m ``FRAME`` line (``Xsequence=N``), or
    None if it has none (or not a whole number ≥ 0)."""
    for word in line.split()[1:]:
        if word.startswith(b"Xsequence="):
            value = word[len(b"Xsequence=") :]
            # a whole number ≥ 0 that fits in 63 bits, else none
            return int(value) if value.isdigit() and len(value) <= 18 else None
    return None


class StreamCamera(ThreadedCamera):
    """Frames from a live YUV4MPEG2 stream (luma = grayscale) in a named pipe or
    on a Unix socket."""

    def __init__(self, path: str) -> None:
        if not is_stream(path):
            raise CameraError(f"{path!r} is neither a named pipe nor a Unix socket")
        super().__init__(path)
        self._pending = bytearray()  # read, not yet parsed
        self._socket: socket.socket | None = None
        self._fd = self._open(path)
        try:
            header = self._read_line(time.monotonic() + OPEN_TIMEOUT_S)
            if header is None:
                raise CameraError(
                    f"no video arrives on {path} within {OPEN_TIMEOUT_S:g} s: is "
                    "the program that writes it running, and free (a camera "
                    "socket serves one reader at a time)?"
                )
            self.width_px, self.height_px, self.fps, colour = parse_y4m_header(header)
        except BaseException:
            self._release()
            raise
        self._frame_bytes = round(
            self.width_px * self.height_px * BYTES_PER_PIXEL[colour]
        )

    def _open(self, path: str) -> int:
        """A non-blocking descriptor to read the stream from."""
        if stat.S_ISSOCK(os.stat(path).st_mode):
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._socket.connect(path)
            except OSError as exc:
                self._socket.close()
                raise CameraError(
                    f"cannot connect to the camera socket {path}: {exc.strerror}; "
                    "is the program that serves it (e.g. neurorig sim "
                    "--camera-socket) running?"
                ) from None
            self._socket.setblocking(False)
            return self._socket.fileno()
        # Non-blocking: opening a pipe nobody writes to would block for ever.
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def _release(self) -> None:
        if self._socket is not None:
            self._socket.close()
        elif self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def _loop(self, on_frame: FrameCallback) -> None:
        luma = self.width_px * self.height_px
        while not self._stop.is_set():
            line = self._read_line(None)
            ok = line is not None and line.startswith(b"FRAME")
            if not ok or not self._fill_to(self._frame_bytes, None):
                if not self._stop.is_set():
                    self.error = CameraError(
                        f"the video stream on {self.source} ended or broke "
                        f"(after {self.frames_read} frames)"
                    )
                return
            frame = np.frombuffer(self._pending, np.uint8, count=luma).copy()
            del self._pending[: self._frame_bytes]
            assert line is not None
            self._deliver(
                on_frame,
                frame.reshape(self.height_px, self.width_px),
                frame_sequence(line),
            )

    def _read_line(self, deadline: float | None) -> bytes | None:
        """The next header or FRAME line; None on stop, deadline or end of stream."""
        while True:
            end = self._pending.find(b"\n", 0, MAX_LINE_BYTES)
            if end >= 0:
                line = bytes(self._pending[:end])
                del self._pending[: end + 1]
                return line
            if len(self._pending) >= MAX_LINE_BYTES:  # not y4m: let the caller say so
                return bytes(self._pending[:MAX_LINE_BYTES])
            if not self._fill_to(len(self._pending) + 1, deadline):
                return None

    def _fill_to(self, n_bytes: int, deadline: float | None) -> bool:
        """Read until ``n_bytes`` are pending; False on stop, deadline or end."""
        while len(self._pending) < n_bytes:
            wait_s = _POLL_S
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
            if self._stop.is_set():
                return False
            if not select.select([self._fd], [], [], wait_s)[0]:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                continue
            try:
                data = os.read(self._fd, READ_CHUNK_BYTES)
            except BlockingIOError:
                continue
            if not data:
                return False  # the writer closed its end
            self._pending += data
        return True
