"""RecordingWriter: append-only, crash-safe writing of one recording folder.

Durability (docs/recording-format.md, "Durability"):

* Samples, gaps, frame times and frame-table rows are buffered and handed to the
  OS by a timer thread every ``flush_interval_s`` (20 ms), whether or not more
  data comes, so a SIGKILL loses at most that much of what the writer was given.
* An event reaches the OS before ``append_event`` returns.
* Everything is forced to disk (``fsync``) every ``fsync_interval_s`` (1 s), off
  the appending threads' lock: a power cut loses at most that much.
* The index line that starts a run of samples reaches the OS before its samples,
  so a torn recording never assigns samples to the wrong sample number.
* A live writer holds a lock on ``samples.i16``: a reader tells a recording in
  progress from one whose process died (``Recording.status == "crashed"``).

Disk full: every write (samples, index, events, frame times, frame table, video,
metadata) turns ENOSPC, EDQUOT and EFBIG into ``DiskFullError`` naming the
file. Before that, the free-space guard stops the recording while there is
still room (``free_space_reserve_s`` of recording at the measured rate, at least
``free_space_floor_bytes``), so every file is finished and readable and
``metadata.json`` says why (``status: disk_full``, ``stop_reason``).
A small ``metadata.reserve`` file holds room for that last metadata even when
something else fills the disk; it is removed when the recording ends.

Threads: samples and events come from the session's relay thread, frames from
its frame-writer thread, trials from the runner, ``close`` from the caller, the
flush timer from its own thread. One lock serialises the files; the video has
its own lock (encoding a frame takes milliseconds and must not hold up samples
and events). Lock order: video, then files.
"""

from __future__ import annotations

import csv
import errno
import functools
import io
import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rig.recording import _format as f
from rig.recording._files import (
    DISK_FULL_ERRNOS,
    AppendFile,
    atomic_write,
    free_bytes,
    make_reserve,
)
from rig.recording._space import SpaceGuard
from rig.recording._video import VideoFile, VideoStorage

if TYPE_CHECKING:
    from collections.abc import Iterable

RESERVE_BYTES = 256 << 10  # room kept for the final metadata.json
FrameRow = tuple[int, "int | None", str, "int | None"]
# A tracked frame: (frame_index, sample or None, band positions along the body
# mm, each region's displacement mm, the whole body's displacement mm)
TrackingRow = tuple[int, "int | None", Any, Any, float]


def _serialised(method):
    """Run a RecordingWriter method under the writer's file lock."""

    @functools.wraps(method)
    def under_lock(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return under_lock


class DiskFullError(OSError):
    """The disk filled up (or nearly): the recording was stopped, what came
    before is kept. ``filename`` names the file that could not be written (the
    folder when the free-space guard stopped it first)."""


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
    buffered_bytes: int = 0  # handed to the writer, not yet to the OS
    frame_table_rows: int = 0
    tracking_lines: int = 0  # lines of tracking.jsonl handed to the writer


class RecordingWriter:
    """Writes samples, gaps, events, frames and attachments into ``folder``."""

    def __init__(
        self,
        folder: Path,
        *,
        n_channels: int,
        sample_rate_hz: float,
        metadata: dict[str, Any],
        flush_interval_s: float = 0.02,
        fsync_interval_s: float = 1.0,
        free_space_reserve_s: float = 10.0,
        free_space_floor_bytes: int = 50_000_000,
        video: VideoStorage | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.video_storage = video or VideoStorage()
        self.n_channels = int(n_channels)
        self.sample_rate_hz = float(sample_rate_hz)
        self.flush_interval_s = float(flush_interval_s)
        self.fsync_interval_s = float(fsync_interval_s)
        self._guard_space = SpaceGuard(
            self.folder,
            nominal_bytes_per_s=2 * self.n_channels * self.sample_rate_hz,
            reserve_s=free_space_reserve_s,
            floor_bytes=free_space_floor_bytes,
        )
        self._metadata = {
            "format": f.FORMAT_NAME,
            "schema_version": f.SCHEMA_VERSION,
            "status": "recording",
            "n_channels": self.n_channels,
            "sample_rate_hz": self.sample_rate_hz,
            "sample_dtype": f.SAMPLE_DTYPE,
            "flush_interval_s": self.flush_interval_s,
            "fsync_interval_s": self.fsync_interval_s,
            "free_space_reserve_s": float(free_space_reserve_s),
            "free_space_floor_bytes": int(free_space_floor_bytes),
            **metadata,
        }
        self._lock = threading.RLock()
        self._video_lock = threading.Lock()
        self._error: BaseException | None = None
        self._error_reported = False
        self._closed = False
        self._stop_timer = threading.Event()
        self._timer: threading.Thread | None = None
        self._check_space_before_start()
        self.folder.mkdir(parents=True, exist_ok=False)
        (self.folder / f.ATTACHMENTS).mkdir()
        self._reserve = self.folder / f.RESERVE
        self._files: list[AppendFile] = []
        try:
            make_reserve(self._reserve, RESERVE_BYTES)
            self._write_metadata()
            self._samples = self._open(f.SAMPLES)
            self._samples.lock_exclusive()
            self._index = self._open(f.INDEX)
            self._events = self._open(f.EVENTS)
            self._frames_csv = self._open(f.FRAMES)
            self._frames_csv.write(b"frame_index,host_time_s,camera_frame_number\n")
            self._flush_files()
        except OSError as exc:
            self._abandon_start()
            raise self._as_disk_full(exc, self.folder / f.METADATA) from exc
        self._frame_table: AppendFile | None = None  # opened at the first row
        self._tracking: AppendFile | None = None  # opened at the first tracked frame
        self._n_tracked = 0
        self._video: VideoFile | None = None  # opened at the first frame
        self._video_pending_release = False
        self._next_sample: int | None = None
        self._rows = 0
        self._gaps = 0
        self._lost = 0
        self._n_events = 0
        self._n_frames = 0
        self._n_table_rows = 0
        now = time.monotonic()
        self._last_flush = now
        self._last_fsync = now
        self._timer = threading.Thread(
            target=self._timer_loop, name=f"flush {self.folder.name}", daemon=True
        )
        self._timer.start()

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
            self._write_line(
                self._index,
                {"kind": "run", "row": self._rows, "first_sample": first_sample},
            )
            self._flush_now(self._samples, self._index)
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
            self._write_line(
                self._index,
                {"kind": "run", "row": self._rows, "first_sample": self._next_sample},
            )
            self._flush_now(self._samples, self._index)
        elif self._next_sample is None:
            self._add_gap(first_sample, n_lost)

    def _add_gap(self, first_sample: int, n_lost: int) -> None:
        self._gaps += 1
        self._lost += n_lost
        self._write_line(
            self._index,
            {"kind": "gap", "first_sample": first_sample, "n_lost": n_lost},
        )

    @_serialised
    def append_event(self, sample: int, kind: str, **fields: Any) -> None:
        """Append one event stamped with a device sample number; it reaches the
        OS before this returns (a SIGKILL right after cannot lose it)."""
        self._check_open()
        record = {"sample": int(sample), "kind": kind, "host_time_s": time.time()}
        record.update(fields)
        self._write_line(self._events, record)
        self._flush_now(self._events)
        self._n_events += 1
        self._maybe_flush()

    def append_frame(
        self,
        frame: np.ndarray,
        sample: int | None,
        host_time_s: float,
        *,
        camera_frame_number: int | None = None,
    ) -> None:
        """Append one grayscale frame (its sample number goes in the frame table:
        ``append_frame_samples`` or ``write_frame_samples``), with the camera's
        own number of it where the camera gives one."""
        with self._video_lock:
            with self._lock:
                self._check_open()
                if self._video is None:
                    self._open_video(frame.shape)
                video = self._video
            assert video is not None
            try:
                video.write(frame)
            except OSError as exc:
                with self._lock:
                    error = self._fail(exc, video.path)
                    self._release_video_after_error()
                raise error from exc
            with self._lock:
                if self._error is not None and self._video_pending_release:
                    self._release_video_after_error()  # stopped while encoding
                self._check_open()
                number = "" if camera_frame_number is None else int(camera_frame_number)
                self._frames_csv.write(
                    f"{self._n_frames},{host_time_s:.6f},{number}\n".encode("ascii")
                )
                self._n_frames += 1
                self._maybe_flush()

    @_serialised
    def append_frame_samples(self, rows: Iterable[FrameRow]) -> None:
        """Append rows ``(frame_index, sample, source, trigger_count)`` of the
        frame table as they are established (flushed like samples).

        A later row for the same frame replaces an earlier one; the close-time
        ``write_frame_samples`` replaces them all.
        """
        self._check_open()
        table = self._frame_table_file()
        text = _frame_rows_csv(rows)
        table.write(text.encode("utf-8"))
        self._n_table_rows += text.count("\n")
        self._maybe_flush()

    @_serialised
    def append_tracking(
        self, rows: Iterable[TrackingRow], *, info: dict[str, Any] | None = None
    ) -> None:
        """Append the live tracking of recorded frames to ``tracking.jsonl``
        (flushed like samples: a killed recording keeps what was tracked up to
        the last 20 ms). A later line for the same frame replaces an earlier
        one. ``info`` (how the frames were tracked) goes into the metadata as
        ``tracking`` with the first rows."""
        self._check_open()
        if self._tracking is None:
            self._tracking = self._open(f.TRACKING)
            if info is not None:
                self._metadata["tracking"] = {"file": f.TRACKING, **info}
                self._atomic_metadata()
        text = "".join(_tracking_line(row) for row in rows)
        self._tracking.write(text.encode("ascii"))
        self._n_tracked += text.count("\n")
        self._maybe_flush()

    @_serialised
    def write_frame_samples(self, rows: list[FrameRow]) -> None:
        """Write the whole frame → sample table at once (atomically replaced)."""
        if self._frame_table is not None:  # superseded: its rows are in ``rows``
            self._files.remove(self._frame_table)
            self._frame_table.close()
            self._frame_table = None
        text = _FRAME_HEADER + _frame_rows_csv(rows)
        self._n_table_rows = len(rows)
        self._atomic(self.folder / f.FRAME_SAMPLES, text)

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the metadata as written so far."""
        with self._lock:
            return dict(self._metadata)

    @_serialised
    def attach_file(self, name: str, data: bytes | str | Path) -> None:
        """Copy a protocol or calibration file into ``attachments/``."""
        self._check_open()
        target = self.folder / f.ATTACHMENTS / Path(name).name
        try:
            if isinstance(data, bytes):
                atomic_write(target, data)
            else:
                atomic_write(target, Path(data).read_bytes())
        except OSError as exc:
            raise self._as_disk_full(exc, target, stop=True) from exc

    @_serialised
    def update_metadata(self, **fields: Any) -> None:
        """Merge ``fields`` into metadata.json (atomically replaced); on a full
        disk the fields are dropped and the recording stops."""
        kept = self._metadata
        self._metadata = {**kept, **fields}
        try:
            self._write_metadata()
        except OSError as exc:
            self._metadata = kept
            raise self._as_disk_full(exc, self.folder / f.METADATA, stop=True) from exc

    # ------------------------------------------------------------ durability

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self._flush_files()

    @_serialised
    def flush(self, *, fsync: bool = False) -> None:
        """Write buffered data to the OS; with ``fsync``, force it to disk."""
        if self._error is not None or self._closed:
            return
        self._flush_files()
        if fsync:
            for file in self._files:
                self._try(file.fsync, file.path)
            self._last_fsync = time.monotonic()

    def _flush_files(self) -> None:
        self._flush_now(*self._files)
        self._last_flush = time.monotonic()

    def _flush_now(self, *files: AppendFile) -> None:
        for file in files:
            self._try(file.flush, file.path)

    def _timer_loop(self) -> None:
        """Flush on a clock, check the free space, fsync off the lock."""
        while not self._stop_timer.wait(self.flush_interval_s):
            with self._lock:
                if self._error is not None or self._closed:
                    return
                try:
                    self._flush_files()
                    self._check_space()
                except OSError:
                    return  # stored in self._error: the next append raises it
                due = time.monotonic() - self._last_fsync >= self.fsync_interval_s
                files = list(self._files) if due else []
            for file in files:  # fsync can take long: not under the lock
                try:
                    file.fsync()
                except (OSError, TypeError):
                    pass  # closed meanwhile, or the next flush will say
            if due:
                self._last_fsync = time.monotonic()

    def _check_space(self) -> None:
        if not self._guard_space.enabled:
            return
        video = self._video
        total = sum(fl.written for fl in self._files) + (video.size() if video else 0)
        check = self._guard_space.check(total)
        if check.low:
            exc = DiskFullError(
                errno.ENOSPC,
                f"disk full while recording into {self.folder}: "
                f"{check.describe()}; the reserve is "
                f"{self._guard_space.describe_settings()}",
                str(self.folder),
            )
            raise self._fail(exc, self.folder)

    def _check_space_before_start(self) -> None:
        guard = self._guard_space
        if guard.floor_bytes <= 0:
            return
        free = free_bytes(self.folder)
        if free < guard.floor_bytes:
            raise DiskFullError(
                errno.ENOSPC,
                f"cannot start a recording in {self.folder}: only {free / 1e6:.3g} MB "
                f"free, the reserve is {guard.describe_settings()}",
                str(self.folder),
            )

    # ------------------------------------------------------------ closing

    def close(self, status: str = "completed") -> None:
        """Flush, fsync, finish the video and the metadata (idempotent).

        After the recording was stopped by an error, its status (``disk_full``,
        ``fault:recording``) is kept.
        """
        self._stop_timer.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join()
        with self._video_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            if self._error is not None:
                self._release_video_after_error()
                return
            try:
                self._flush_files()
                for file in self._files:
                    self._try(file.fsync, file.path)
                if self._video is not None:
                    self._video.release()
                    problem = self._video.disk_problem()
                    if problem is not None:  # its cues did not fit: frames are kept
                        raise self._fail(problem, self._video.path)
            except OSError:
                return  # _fail finished everything it could
            for file in self._files:
                file.close()
            self._reserve.unlink(missing_ok=True)
            self._metadata.update(self._summary(status))
            try:
                self._atomic_metadata()
            except OSError:
                pass  # the reader says "crashed" for a recording left "recording"

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close("completed" if exc[0] is None else "crashed")

    @property
    def data_rate_bytes_per_s(self) -> float:
        """The rate the free-space guard works with: measured over the last
        seconds of recording, never below the nominal (the samples', and the
        video's at its storage's measured bytes per pixel once it started)."""
        return self._guard_space.rate

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
            buffered_bytes=sum(len(fl.buffer) for fl in self._files),
            frame_table_rows=self._n_table_rows,
            tracking_lines=self._n_tracked,
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
        path = self.folder / f.VIDEO
        fps = float(self._metadata.get("camera", {}).get("trigger_rate_hz") or 60.0)
        try:
            self._video = VideoFile(path, shape, fps, self.video_storage)
        except OSError as exc:
            raise self._fail(exc, path) from exc
        storage = self.video_storage
        # The guard's prior rate from now on: samples and this video's measured
        # bytes per pixel (it measures the real rate too and takes the larger).
        self._guard_space.expect(storage.bytes_per_s(*self._video.camera_shape, fps))
        self._metadata["video"] = {
            "file": f.VIDEO,
            **storage.describe(),
            "width": self._video.width,
            "height": self._video.height,
            "camera_width": self._video.camera_shape[1],
            "camera_height": self._video.camera_shape[0],
            "nominal_fps": fps,
            "gop": 1,
            "expected_bytes_per_s": round(
                storage.bytes_per_s(*self._video.camera_shape, fps)
            ),
        }
        self._atomic_metadata()

    def _frame_table_file(self) -> AppendFile:
        if self._frame_table is None:
            path = self.folder / f.FRAME_SAMPLES
            fresh = not path.exists() or path.stat().st_size == 0
            table = AppendFile(path)
            if fresh:
                table.write(_FRAME_HEADER.encode("ascii"))
            self._frame_table = table
            self._files.append(table)
        return self._frame_table

    def _write_line(self, file: AppendFile, record: dict[str, Any]) -> None:
        file.write((json.dumps(record, separators=(",", ":")) + "\n").encode())

    def _write_metadata(self) -> None:
        text = json.dumps(self._metadata, indent=2, default=str)
        atomic_write(self.folder / f.METADATA, text)

    def _atomic_metadata(self) -> None:
        self._atomic(self.folder / f.METADATA, None)

    def _atomic(self, path: Path, text: str | None) -> None:
        """Replace ``path`` (metadata when ``text`` is None) or stop on disk full."""
        try:
            if text is None:
                self._write_metadata()
            else:
                atomic_write(path, text)
        except OSError as exc:
            raise self._as_disk_full(exc, path, stop=True) from exc

    def _check_open(self) -> None:
        if self._error is not None:
            if not self._error_reported:  # found by the timer: say it once
                self._error_reported = True
                raise self._error
            raise RecordingStopped(f"recording {self.folder} stopped: {self._error}")
        if self._closed:
            raise RecordingStopped(f"recording {self.folder} is closed")

    def _try(self, fn, path: Path) -> None:
        try:
            fn()
        except OSError as exc:
            raise self._fail(exc, path) from exc

    def _as_disk_full(
        self, exc: OSError, path: Path, *, stop: bool = False
    ) -> Exception:
        """``exc`` as a DiskFullError naming ``path`` if it is one (stopping the
        recording when ``stop``), else ``exc``."""
        if exc.errno not in DISK_FULL_ERRNOS or isinstance(exc, DiskFullError):
            return exc
        if stop:
            return self._fail(exc, path)
        return DiskFullError(
            exc.errno,
            f"disk full while recording into {self.folder}: cannot write "
            f"{path.name} ({free_bytes(path.parent)} bytes free)",
            str(path),
        )

    def _fail(self, exc: OSError, path: Path) -> Exception:
        """Stop the recording after ``exc`` (on ``path``), keep what is written,
        say why in metadata; return the error to raise."""
        if self._error is not None:
            return RecordingStopped(f"recording {self.folder} stopped: {self._error}")
        if exc.errno in DISK_FULL_ERRNOS and not isinstance(exc, DiskFullError):
            free = shutil.disk_usage(self.folder).free
            exc = DiskFullError(
                exc.errno,
                f"disk full while recording into {self.folder}: cannot write "
                f"{path.name} ({free} bytes free): {exc.strerror}",
                str(path),
            )
        saved = (
            f"recording stopped; {self._rows} sample rows, {self._n_events} events "
            f"and {self._n_frames} frames before this point are saved"
        )
        if isinstance(exc, DiskFullError):
            exc = DiskFullError(exc.errno, f"{exc.strerror}; {saved}", exc.filename)
            status = "disk_full"
        else:
            status = "fault:recording"
        self._error = exc
        # Found by the flush timer: nobody was told; the next append raises it.
        self._error_reported = threading.current_thread() is not self._timer
        # Keep what reached the OS; hand over the rest while there is room (the
        # guard stops before the disk is full), drop it if there is none.
        for file in self._files:
            try:
                file.flush()
                file.fsync()
            except OSError:
                file.buffer.clear()
            file.close()
        if self._video_lock.acquire(blocking=False):  # else: at the frame's end
            try:
                self._release_video_after_error()
            finally:
                self._video_lock.release()
        else:
            self._video_pending_release = True
        self._reserve.unlink(missing_ok=True)  # room for the last metadata
        self._metadata.update(self._summary(status))
        self._metadata["stop_reason"] = str(exc)
        try:
            self._write_metadata()
        except OSError:
            pass  # the reader says "crashed" for a recording left "recording"
        return exc

    def _release_video_after_error(self) -> None:
        if self._video is not None:
            self._video.release()
        self._video_pending_release = False

    def _open(self, name: str) -> AppendFile:
        file = AppendFile(self.folder / name)
        self._files.append(file)
        return file

    def _abandon_start(self) -> None:
        """The recording could not start: remove the folder we just made."""
        for file in self._files:
            file.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_FRAME_HEADER = "frame_index,sample,source,trigger_count\n"


def _mm(values: Any) -> list[float | None]:
    """Millimetres to 0.1 µm, NaN as null (JSON has no NaN)."""
    return [round(float(v), 4) if np.isfinite(v) else None for v in np.ravel(values)]


def _tracking_line(row: TrackingRow) -> str:
    index, sample, positions_mm, region_mm, body_mm = row
    record = {
        "frame_index": int(index),
        "sample": None if sample is None else int(sample),
        "positions_mm": _mm(positions_mm),
        "region_displacement_mm": _mm(region_mm),
        "body_displacement_mm": _mm([body_mm])[0],
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def _frame_rows_csv(rows: Iterable[FrameRow]) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    for index, sample, source, trigger in rows:
        out.writerow(
            [
                int(index),
                "" if sample is None else int(sample),
                source,
                "" if trigger is None else int(trigger),
            ]
        )
    return buffer.getvalue()
