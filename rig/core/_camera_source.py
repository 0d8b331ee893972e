"""What every host camera source shares: ``ThreadedCamera`` (a thread that reads
frames and hands each to ``on_frame``), ``CameraError`` and ``FrameCallback``.

Its own module so that ``rig.core.camera`` (which picks a source for a spec) and
``rig.core.stream_camera`` (one of the sources) both import it, and neither
imports the other back.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable

import numpy as np

FrameCallback = Callable[[np.ndarray, float], None]


class CameraError(OSError):
    """The camera could not be opened or stopped delivering frames."""


class ThreadedCamera(abc.ABC):
    """What every host camera source shares: a thread running ``_loop`` that
    reads frames, counts them, keeps the latest and hands each to ``on_frame``;
    ``stop()`` ends it and releases the source (``_release``).

    ``frame_number`` is the camera's own number of the frame being handed over
    (a V4L2 buffer sequence number, a stream's ``Xsequence``), set before
    ``on_frame`` is called on the camera thread; None where the source gives
    none. The optical sync cross-checks it (docs/optical-sync.md).
    """

    def __init__(self, source: int | str) -> None:
        self.source = source
        self.frame_number: int | None = None
        self.frames_read = 0
        self.error: CameraError | None = None
        self.latest: tuple[np.ndarray, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_frame: FrameCallback) -> None:
        """Start delivering frames on a background thread."""
        self._thread = threading.Thread(
            target=self._loop, args=(on_frame,), name="camera", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering frames and release the source."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._release()

    def _deliver(
        self,
        on_frame: FrameCallback,
        frame: np.ndarray,
        frame_number: int | None = None,
    ) -> None:
        now = time.monotonic()
        self.frames_read += 1
        self.latest = (frame, now)
        self.frame_number = frame_number
        on_frame(frame, now)

    @abc.abstractmethod
    def _loop(self, on_frame: FrameCallback) -> None:
        """Read frames until ``_stop`` is set, each through ``_deliver``."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Release the source (the device, the file, the socket)."""
