r"""The simulated camera as a live video stream on a Unix socket (YUV4MPEG2, grayscale).

``neurorig sim --camera-socket PATH`` listens on a Unix socket at PATH and sends
each program that connects the simulated camera's frames as they are rendered
(one per camera trigger, see ``camera.SimCamera``), as a YUV4MPEG2 stream with
the ``Cmono`` colour space: a header line, then a ``FRAME`` line and the raw
8-bit pixels of each frame. neurorig's ``--camera PATH`` reads it as a live
camera (``rig.core.stream_camera``).

Each ``FRAME`` line carries the camera's own frame number as an
application parameter, ``FRAME Xsequence=N`` (as a V4L2 camera's buffer
sequence numbers: exposures counted since the stream started, with a gap where
a frame was lost on the way). YUV4MPEG2 allows such parameters on frame lines
and readers that do not know them skip them (ffmpeg does).

This puts the simulated board *and* its camera in their own process, as real
hardware is: the host pays only for receiving and recording the video, not for
rendering it, and its figures are its own.

A socket rather than a named pipe: each connection is its own stream with its
own header, and a reader that leaves is noticed at once (its end reads empty)
even while no frames flow, so the next one always starts at a header. One
reader is served at a time, as a camera has one owner; the next connects after.
"""

from __future__ import annotations

import functools
import select
import socket
import stat
import threading
from pathlib import Path

import numpy as np

# The y4m header's frame rate is nominal: frames come when the board triggers.
NOMINAL_FPS = 60
MAX_SOCKET_PATH_BYTES = 107  # sun_path is 108 bytes with its terminating NUL
_POLL_S = 0.1  # how often the server checks for close() and a departed reader


def y4m_header(width_px: int, height_px: int, fps: int = NOMINAL_FPS) -> bytes:
    """The stream header of a grayscale YUV4MPEG2 video."""
    return f"YUV4MPEG2 W{width_px} H{height_px} F{fps}:1 Ip A1:1 Cmono\n".encode()


def frame_line(frame_number: int | None) -> bytes:
    """A y4m FRAME line, with the camera's frame number if it has one."""
    if frame_number is None:
        return b"FRAME\n"
    return f"FRAME Xsequence={frame_number}\n".encode("ascii")


class CameraServer:
    """Serves ``rig``'s simulated camera on a Unix socket at ``path``."""

    def __init__(
        self, rig, path: str | Path, *, truth_path: str | Path | None = None
    ) -> None:
        self.rig = rig
        self.path = Path(path)
        # Where the camera logs what each frame truly shows (SimCamera.log_truth_to)
        self.truth_path = None if truth_path is None else Path(truth_path)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise ValueError(
                    f"--camera-socket {self.path}: exists and is not a socket; give "
                    "a path that does not exist yet (the simulator makes the socket)"
                )
            self.path.unlink()  # left behind by a simulator that was killed
        if len(bytes(self.path)) > MAX_SOCKET_PATH_BYTES:
            raise ValueError(
                f"--camera-socket {self.path}: {len(bytes(self.path))} bytes long; a "
                f"Unix socket path has at most {MAX_SOCKET_PATH_BYTES} (use a "
                "shorter one, e.g. under /tmp)"
            )
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(1)
        if self.truth_path is not None:
            try:
                rig.camera().log_truth_to(self.truth_path)
            except OSError:
                self._listener.close()
                self.path.unlink(missing_ok=True)
                raise
        self._stop = threading.Event()
        self._reader_gone = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name="camera-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self._stop.set()
        self._reader_gone.set()
        self._thread.join(timeout=5.0)
        self._listener.close()
        self.path.unlink(missing_ok=True)
        if self.truth_path is not None:
            self.rig.camera().close_truth_log()

    def _serve(self) -> None:
        header = y4m_header(self.rig.optics.width_px, self.rig.optics.height_px)
        while not self._stop.is_set():
            if not select.select([self._listener], [], [], _POLL_S)[0]:
                continue
            connection, _ = self._listener.accept()
            with connection:
                self._serve_one(connection, header)

    def _serve_one(self, connection: socket.socket, header: bytes) -> None:
        self._reader_gone.clear()
        camera = self.rig.camera()  # triggers reach it from now on
        try:
            connection.sendall(header)
        except OSError:
            return  # gone before the header
        camera.start(functools.partial(self._send_frame, connection, camera))
        try:
            while not self._reader_gone.is_set() and not self._stop.is_set():
                # A reader never sends: readable means it closed its end.
                if select.select([connection], [], [], _POLL_S)[0]:
                    if not connection.recv(4096):
                        self._reader_gone.set()
        except OSError:  # reset by the reader
            self._reader_gone.set()
        finally:
            camera.stop()

    def _send_frame(
        self,
        connection: socket.socket,
        camera,
        frame: np.ndarray,
        _host_time_s: float,
    ) -> None:
        if self._reader_gone.is_set():
            return
        try:
            connection.sendall(frame_line(camera.frame_number))
            connection.sendall(np.ascontiguousarray(frame).data.cast("B"))
        except OSError:  # the reader left (broken pipe, reset)
            self._reader_gone.set()
