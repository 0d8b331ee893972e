"""RecordingWriter: append-only, crash-safe writing of one recording folder.

Durability: data handed to the writer is written to the OS (``flush``) at least
every ``flush_interval_s`` (100 ms) and forced to disk (``fsync``) at least every
``fsync_interval_s`` (1 s). A process killed with SIGKILL therefore loses at most
the last 100 ms handed over; a power cut at most the last second. The index line
that starts a new run of samples is written and flushed *before* the samples it
describes, so a torn recording never assigns samples to the wrong sample number.

Called from one thread (the session's relay thread). A full disk raises
``DiskFullError`` once; the writer is then stopped and every earlier byte stays
readable.
"""

from __future__ import annotations

import csv
import errno
import functools
import io
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rig.recording import _format as f

if TYPE_CHECKING:
    import cv2  # imported where used: only a recording with video needs it

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _serialised(method):
    """Run a RecordingWriter method under the writer's lock."""

    @functools.wraps(method)
    def under_lock(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return under_lock


class DiskFullError(OSError):
    """The disk filled up; the recording was stopped and what came before is kept."""


class RecordingStopped(RuntimeError):
    """Writing to a recording that was closed or stopped by an error."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What the writer has done so far."""

    samples_written: int
    gaps: int
    samples_lost: int
    events: int
    frames: int
    bytes_written: int
    last_flush_s: float
    last_fsync_s: float


class _AppendFile:
    """An unbuffered append-only file with our own buffer and flush clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.buffer = bytearray()
        self.written = 0

    def write(self, data: bytes) -> None:
        self.buffer += data

    def flush(self) -> None:
        data, self.buffer = bytes(self.buffer), bytearray()
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        finally:
            self.written += done
            if done < len(data):  # keep what did not reach the OS (disk full)
                self.buffer = bytearray(data[done:])

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class RecordingWriter:
    """Writes samples, gaps, events, frames and attachments into ``folder``."""

    def __init__(
        self,
        folder: Path,
        *,
        n_channels: int,
        sample_rate_hz: float,
        metadata: dict[str, Any],
        flush_interval_s: float = 0.1,
        fsync_interval_s: float = 1.0,
    ) -> None:
        self.folder = Path(folder)
        self.n_channels = int(n_channels)
        self.sample_rate_hz = float(sample_rate_hz)
        self.flush_interval_s = flush_interval_s
        self.fsync_interval_s = fsync_interval_s
        self._metadata = {
            "format": f.FORMAT_NAME,
            "schema_version": f.SCHEMA_VERSION,
            "status": "recording",
            "n_channels": self.n_channels,
            "sample_rate_hz": self.sample_rate_hz,
            "sample_dtype": f.SAMPLE_DTYPE,
            "flush_interval_s": flush_interval_s,
            "fsync_interval_s": fsync_interval_s,
            **metadata,
        }
        self.folder.mkdir(parents=True, exist_ok=False)
        (self.folder / f.ATTACHMENTS).mkdir()
        self._write_metadata()
        self._samples = _AppendFile(self.folder / f.SAMPLES)
        self._index = _AppendFile(self.folder / f.INDEX)
        self._events = _AppendFile(self.folder / f.EVENTS)
        self._frames_csv = _AppendFile(self.folder / f.FRAMES)
        self._frames_csv.write(b"frame_index,host_time_s\n")
        self._files = [self._samples, self._index, self._events, self._frames_csv]
        self._video: cv2.VideoWriter | None = None  # opened at the first frame
        self._next_sample: int | None = None
        self._rows = 0
        self._gaps = 0
        self._lost = 0
        self._n_events = 0
        self._n_frames = 0
        now = time.monotonic()
        self._last_flush = now
        self._last_fsync = now
        self._error: BaseException | None = None
        self._closed = False
        # The session writes from several threads (samples and events from the
        # relay, video from the frame writer, trials from the runner, close from
        # the caller): one at a time, so close() never interleaves an append.
        self._lock = threading.RLock()

    @classmethod
    def create(cls, folder: str | Path, **kwargs: Any) -> RecordingWriter:
        """Create ``folder`` (must not exist) and start a recording in it."""
        return cls(Path(folder), **kwargs)

    # ------------------------------------------------------------ appends

    @_serialised
    def append_samples(self, first_sample: int, samples: np.ndarray) -> None:
        """Append int16 ``(n, n_channels)`` samples starting at ``first_sample``."""
        self._check_open()
        if samples.dtype != np.int16 or samples.ndim != 2:
            raise ValueError(
                f"samples must be int16 (n, {self.n_channels}), got "
                f"{samples.dtype} {samples.shape}"
            )
        if samples.shape[1] != self.n_channels:
            raise ValueError(
                f"samples have {samples.shape[1]} channels, recording has "
                f"{self.n_channels}"
            )
        if samples.shape[0] == 0:
            return
        first_sample = int(first_sample)
        if self._next_sample is None or first_sample != self._next_sample:
            if self._next_sample is not None:
                if first_sample < self._next_sample:
                    raise ValueError(
                        f"sample {first_sample} goes back before {self._next_sample}: "
                        "a recording only moves forward"
                    )
                self._add_gap(self._next_sample, first_sample - self._next_sample)
            # A new run: its index line reaches the OS before its samples do.
            self._guard(
                self._write_line,
                self._index,
                {"kind": "run", "row": self._rows, "first_sample": first_sample},
            )
            self._guard(self._index.flush)
        self._samples.write(np.ascontiguousarray(samples, dtype="<i2").tobytes())
        self._rows += samples.shape[0]
        self._next_sample = first_sample + samples.shape[0]
        self._maybe_flush()

    @_serialised
    def append_gap(self, first_sample: int, n_lost: int) -> None:
        """Record ``n_lost`` samples from ``first_sample`` as lost.

        Gaps are also recorded automatically when samples jump forward; an
        explicit gap at the current end just moves the expected next sample.
        """
        self._check_open()
        first_sample, n_lost = int(first_sample), int(n_lost)
        if self._next_sample is not None and first_sample == self._next_sample:
            self._add_gap(first_sample, n_lost)
            self._next_sample = first_sample + n_lost
            self._guard(
                self._write_line,
                self._index,
                {"kind": "run", "row": self._rows, "first_sample": self._next_sample},
            )
            self._guard(self._index.flush)
        elif self._next_sample is None:
            self._add_gap(first_sample, n_lost)

    def _add_gap(self, first_sample: int, n_lost: int) -> None:
        self._gaps += 1
        self._lost += n_lost
        self._guard(
            self._write_line,
            self._index,
            {"kind": "gap", "first_sample": first_sample, "n_lost": n_lost},
        )

    @_serialised
    def append_event(self, sample: int, kind: str, **fields: Any) -> None:
        """Append one event stamped with a device sample number."""
        self._check_open()
        record = {"sample": int(sample), "kind": kind, "host_time_s": time.time()}
        record.update(fields)
        self._guard(self._write_line, self._events, record)
        self._n_events += 1
        self._maybe_flush()

    @_serialised
    def append_frame(
        self, frame: np.ndarray, sample: int | None, host_time_s: float
    ) -> None:
        """Append one grayscale frame (its sample number is resolved at close)."""
        self._check_open()
        if self._video is None:
            self._open_video(frame.shape)
        assert self._video is not None
        self._guard(self._video.write, frame)
        self._frames_csv.write(f"{self._n_frames},{host_time_s:.6f}\n".encode())
        self._n_frames += 1
        self._maybe_flush()

    @_serialised
    def attach_file(self, name: str, data: bytes | str | Path) -> None:
        """Copy a protocol or calibration file into ``attachments/``."""
        self._check_open()
        target = self.folder / f.ATTACHMENTS / Path(name).name
        if isinstance(data, bytes):
            self._guard(target.write_bytes, data)
        else:
            self._guard(shutil.copyfile, data, target)

    @_serialised
    def write_frame_samples(
        self, rows: list[tuple[int, int | None, str, int | None]]
    ) -> None:
        """Write the frame → sample table: (frame_index, sample, source, trigger)."""
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        out.writerow(["frame_index", "sample", "source", "trigger_count"])
        for index, sample, source, trigger in rows:
            out.writerow(
                [
                    index,
                    "" if sample is None else sample,
                    source,
                    "" if trigger is None else trigger,
                ]
            )
        self._guard(
            self._atomic_write, self.folder / f.FRAME_SAMPLES, buffer.getvalue()
        )

    @_serialised
    def update_metadata(self, **fields: Any) -> None:
        """Merge ``fields`` into metadata.json (atomically replaced)."""
        self._metadata.update(fields)
        self._guard(self._write_metadata)

    # ------------------------------------------------------------ durability

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self.flush_interval_s:
            self.flush(fsync=now - self._last_fsync >= self.fsync_interval_s)

    @_serialised
    def flush(self, *, fsync: bool = False) -> None:
        """Write buffered data to the OS; with ``fsync``, force it to disk."""
        for file in self._files:
            self._guard(file.flush)
        self._last_flush = time.monotonic()
        if fsync:
            for file in self._files:
                self._guard(file.fsync)
            self._last_fsync = time.monotonic()

    @_serialised
    def close(self, status: str = "completed") -> None:
        """Flush, fsync, finalise metadata (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None:
                self.flush(fsync=True)
        finally:
            if self._video is not None:
                self._video.release()
            for file in self._files:
                file.close()
        if self._error is None:
            self._metadata.update(self._summary(status))
            self._write_metadata()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("completed" if exc[0] is None else "crashed")

    @property
    def stats(self) -> WriterStats:
        """Counts and flush times so far."""
        return WriterStats(
            samples_written=self._rows,
            gaps=self._gaps,
            samples_lost=self._lost,
            events=self._n_events,
            frames=self._n_frames,
            bytes_written=sum(fl.written for fl in self._files),
            last_flush_s=self._last_flush,
            last_fsync_s=self._last_fsync,
        )

    # ------------------------------------------------------------ internals

    def _summary(self, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "n_rows": self._rows,
            "n_gaps": self._gaps,
            "samples_lost": self._lost,
            "n_events": self._n_events,
            "n_frames": self._n_frames,
            "closed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _open_video(self, shape: tuple[int, ...]) -> None:
        import cv2

        height, width = shape[:2]
        path = str(self.folder / f.VIDEO)
        fps = float(self._metadata.get("camera", {}).get("trigger_rate_hz") or 60.0)
        video = cv2.VideoWriter(
            path, cv2.VideoWriter.fourcc(*"FFV1"), fps, (width, height), isColor=False
        )
        self._video = video
        if not video.isOpened():
            raise OSError(f"cannot open a lossless FFV1 video writer at {path}")
        self._metadata["video"] = {
            "file": f.VIDEO,
            "codec": "FFV1",
            "width": width,
            "height": height,
            "nominal_fps": fps,
        }
        self._guard(self._write_metadata)

    def _write_line(self, file: _AppendFile, record: dict[str, Any]) -> None:
        file.write((json.dumps(record, separators=(",", ":")) + "\n").encode())

    def _write_metadata(self) -> None:
        text = json.dumps(self._metadata, indent=2, default=str)
        self._atomic_write(self.folder / f.METADATA, text)

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def _check_open(self) -> None:
        if self._error is not None:
            raise RecordingStopped(f"recording {self.folder} stopped: {self._error}")
        if self._closed:
            raise RecordingStopped(f"recording {self.folder} is closed")

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            free = shutil.disk_usage(self.folder).free
            error = DiskFullError(
                exc.errno,
                f"disk full while recording into {self.folder} ({free} bytes free): "
                f"recording stopped; {self._rows} sample rows, {self._n_events} events "
                f"and {self._n_frames} frames before this point are saved",
            )
            self._error = error
            self._stop_after_error()
            raise error from exc

    def _stop_after_error(self) -> None:
        # Keep what reached the OS; try to mark the recording as truncated.
        for file in self._files:
            file.buffer.clear()
        try:
            self._metadata.update(self._summary("truncated: disk full"))
            self._write_metadata()
        except OSError:
            pass  # the reader treats status "recording" after a crash the same way
