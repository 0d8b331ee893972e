"""Recorder: puts what the session sees into one recording at a time.

Samples, gaps and events are written on the thread that hands them over (the
acquisition relay, the runner); frames go to a frame-writer thread because video
encoding is slow and must never hold up the camera. Every write goes through
``_write``, which turns a full disk or a writer that stopped into one call of
``on_failure`` — the session's fail-safe rule (disarm, latch, say so) — and
stops recording; what reached the disk before stays readable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from analysis.displacement import OnlineDisplacement
from firmware_bridge.protocol import Decoded
from rig.core.frame_alignment import align_recorded_frames, drops_from_frame_table
from rig.core.frame_clock import FrameClock, FrameStamp
from rig.recording import DiskFullError, RecordingStopped

log = logging.getLogger(__name__)

FailureHandler = Callable[[Exception], None]

# Frames waiting for the encoder (2 s at 60 fps): beyond it the camera thread
# would wait, or memory would grow and a crash lose seconds of video; a frame
# that does not fit is dropped, counted and recorded as an event.
MAX_QUEUED_FRAMES = 120
# A frame's row goes into the frame table once its trigger is this old: the
# match around it is settled (later triggers can no longer move it).
FRAME_TABLE_SETTLE_S = 1.0
FRAME_TABLE_EVERY_S = 0.5  # how often settled rows are appended


class Recorder:
    """Holds the writer of the recording in progress (or none); thread-safe."""

    def __init__(self, on_failure: FailureHandler) -> None:
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._writer: Any = None  # rig.recording.RecordingWriter while recording
        self._failed: Any = None  # a writer that stopped, kept to close it
        self._finishing = False  # between stop and the frame table written
        self.failure: Exception | None = None  # why the last recording stopped
        self._frame_indices: list[int] = []  # frame-clock indices recorded
        self._frame_led: list[float | None] = []  # LED brightness in each
        self._frame_repeat: list[bool] = []  # identical to the frame before
        self._frame_numbers: list[int | None] = []  # the camera's own numbers
        self._frame_k: dict[int, int] = {}  # frame-clock index -> frame k
        # The recording's own displacement rule over its tracked frames (rest =
        # its first frames tracked), and those first frames, which each new
        # frame revises until the rest is fixed: (k, sample, positions).
        self._displacement: OnlineDisplacement | None = None
        self._first_tracked: list[tuple[int, int | None, np.ndarray]] = []
        self._table_from = 0  # frame k from which the table is not yet written
        self._table_last_sample = -1  # the newest sample the table was given
        self._next_table_s = 0.0
        self.frames_dropped = 0  # frames the writer could not keep up with
        self.first_sample: int | None = None
        self._frames: queue.Queue = queue.Queue(maxsize=MAX_QUEUED_FRAMES)
        self._frame_thread = threading.Thread(
            target=self._frame_loop, name="frame-writer", daemon=True
        )
        self._frame_thread.start()

    @property
    def writer(self) -> Any:
        """The writer being recorded into, or None."""
        with self._lock:
            return self._writer

    @property
    def frame_indices(self) -> list[int]:
        """Frame-clock indices of the frames recorded so far (frame k of the
        video is the k-th)."""
        with self._lock:
            return list(self._frame_indices)

    @property
    def busy(self) -> bool:
        """True from ``start`` until the frame table is written (``finish``),
        a failed recording included: the frame history must be kept until then."""
        with self._lock:
            return (
                self._writer is not None or self._failed is not None or self._finishing
            )

    def start(self, writer: Any, first_sample: int | None) -> None:
        """Record into ``writer`` from ``first_sample`` (board samples) on."""
        with self._lock:
            self._writer = writer
            self._failed = None
            self.failure = None
            self._frame_indices = []
            self._frame_led = []
            self._frame_repeat = []
            self._frame_numbers = []
            self._frame_k = {}
            self._displacement = None
            self._first_tracked = []
            self._table_from = 0
            self._table_last_sample = -1
            self.frames_dropped = 0
            self.first_sample = first_sample

    def stop(self) -> tuple[Any, list[int]]:
        """Stop recording once every frame handed over is written; return the
        writer (None if none) and the frame-clock indices it holds. The caller
        writes the frame table and closes the writer."""
        with self._lock:
            writer, self._writer = self._writer, None
        self._frames.join()
        with self._lock:
            if writer is None:
                writer, self._failed = self._failed, None
            else:
                self._failed = None
            return writer, list(self._frame_indices)

    def finish(self, clock: FrameClock, *, offset_samples: int, status: str) -> Any:
        """Stop, write the frame table (if the recording had not failed), close
        the writer with ``status``; return it (None if not recording)."""
        failed = self.failure is not None
        with self._lock:
            # Until the table is written, the session must not prune the frame
            # clock (found by benchmarks/bench_sync.py: while the encoder's
            # queue drained under load the history was forgotten, and the
            # alignment saw no LED at all).
            self._finishing = True
        try:
            writer, frame_indices = self.stop()
            if writer is None:
                return None
            if not failed:
                self.write_frame_table(writer, clock, frame_indices, offset_samples)
            writer.close(status)
            return writer
        finally:
            with self._lock:
                self._finishing = False

    def close(self) -> None:
        """End the frame-writer thread (after ``stop``)."""
        self._frames.put(None)

    # ------------------------------------------------------------ writing

    def record_batch(self, decoded: Decoded) -> None:
        """Samples and gaps of one decoded batch (relay thread)."""
        writer = self.writer
        if writer is None:
            return
        for first, block in decoded.sample_blocks():
            with self._write(writer):
                writer.append_samples(first, block)
        for first, n_lost in decoded.gaps:
            with self._write(writer):
                writer.append_gap(int(first), int(n_lost))

    def record_event(self, sample: int, kind: str, **fields: Any) -> None:
        """One event at ``sample`` (board samples), if recording."""
        writer = self.writer
        if writer is not None:
            with self._write(writer):
                writer.append_event(int(sample), kind, **fields)

    def attach_protocol(self, path: Path) -> None:
        """A protocol run during this recording: its file in the recording's
        attachments, named in the metadata (the first one as
        ``protocol_file``, every one in ``protocol_files``)."""
        writer = self.writer
        if writer is None:
            return
        with self._write(writer):
            writer.attach_file(path.name, path)
            files = [*writer.metadata.get("protocol_files", []), path.name]
            first = writer.metadata.get("protocol_file") or path.name
            writer.update_metadata(protocol_file=first, protocol_files=files)

    def record_frame(
        self,
        index: int,
        frame: Any,
        host_time_s: float,
        *,
        led_brightness: float | None = None,
        repeat: bool = False,
        frame_number: int | None = None,
    ) -> bool:
        """Queue frame ``index`` (frame-clock numbering) for the frame writer,
        with the LED's brightness in it, whether it repeats the frame before
        and the camera's own number of it (the optical sync's evidence); False
        if it had to be dropped (the encoder is 2 s behind)."""
        with self._lock:
            writer = self._writer
            if writer is None:
                return True
            try:
                self._frames.put_nowait((writer, frame, host_time_s, frame_number))
            except queue.Full:
                self.frames_dropped += 1
                return False
            self._frame_k[index] = len(self._frame_indices)
            self._frame_indices.append(index)
            self._frame_led.append(led_brightness)
            self._frame_repeat.append(repeat)
            self._frame_numbers.append(frame_number)
            return True

    def record_tracking(
        self, index: int, sample: int | None, positions_mm: Any, tracking: Any
    ) -> None:
        """The live tracking of frame ``index`` (frame-clock numbering) into the
        recording's ``tracking.jsonl``, if that frame is recorded (tracking
        thread). Displacement follows the offline rule over the recording's
        tracked frames (``analysis.displacement``: rest = the mean of its first
        ``rest_frames``), so until the rest is fixed each frame rewrites the
        earlier ones (the last line of a frame wins)."""
        positions = np.asarray(positions_mm, dtype=float).ravel()
        with self._lock:
            writer = self._writer
            k = self._frame_k.get(index) if writer is not None else None
            if k is None:
                return  # not recording, or the frame was not kept
            first = self._displacement is None
            if first:
                self._displacement = OnlineDisplacement(tracking.regions_mm)
            rule = self._displacement
            assert rule is not None
            fixed = rule.rest_mm is not None
            rows = rule.process(positions)
            if fixed:
                frames = [(k, sample, positions)]
            else:
                self._first_tracked.append((k, sample, positions))
                frames = list(self._first_tracked)
                if rule.rest_mm is not None:  # fixed by this frame
                    self._first_tracked = []
        lines = [
            (fk, fs, pos, rows.region_mm[i], float(rows.body_mm[i]))
            for i, (fk, fs, pos) in enumerate(frames[-len(rows.body_mm) :])
        ]
        with self._write(writer):
            writer.append_tracking(lines, info=tracking.describe() if first else None)

    def record_frame_table(
        self, clock: FrameClock, offset_samples: int, now_s: float
    ) -> None:
        """Append the frame-table rows settled since the last call (crash-safe:
        a killed recording keeps its table up to ~``FRAME_TABLE_SETTLE_S``)."""
        writer = self.writer
        if writer is None or now_s < self._next_table_s:
            return
        started = time.monotonic()
        stamps, _ = clock.match()
        # Matching walks the whole recording (50 ms for 10 min at 60 fps): at
        # most ~5 % of the relay thread's time goes to it, however long it runs.
        spent_s = time.monotonic() - started
        self._next_table_s = now_s + max(FRAME_TABLE_EVERY_S, 20 * spent_s)
        with self._lock:
            first = self._table_from
            indices = self._frame_indices[first:]
        by_index = {st.frame_index: st for st in stamps}
        settled = now_s - FRAME_TABLE_SETTLE_S
        rows = []
        k = first
        for index in indices:  # in arrival order: stop at the first unsettled
            if clock.frame_time(index) > settled:
                break
            st = by_index.get(index)
            sample = (
                None if st is None or st.sample is None else st.sample + offset_samples
            )
            # Each call re-matches the whole recording; a later match may place
            # a frame at or before one already written (a killed recording once
            # kept two rows out of order). Such a row is left to the close,
            # which rewrites the table whole: a crash-safe row is never wrong.
            if (
                st is not None
                and sample is not None
                and sample > self._table_last_sample
            ):
                rows.append((k, sample, st.source, st.trigger_count))
                self._table_last_sample = sample
            k += 1
        self._table_from = k
        if rows:
            with self._write(writer):
                writer.append_frame_samples(rows)

    def write_frame_table(
        self,
        writer: Any,
        clock: FrameClock,
        frame_indices: list[int],
        offset_samples: int,
    ) -> None:
        """Stamp the recorded frames on the board's clock (by the LED code where
        it proves them, else by arrival: ``source`` says which); report drops."""
        stamps, report = clock.match()
        by_index = {st.frame_index: st for st in stamps}
        # Frame k of the video is the k-th frame handed to the writer.
        recorded = [
            by_index.get(i) or FrameStamp(i, None, "unmatched") for i in frame_indices
        ]
        rows = [
            (
                k,
                None if st.sample is None else st.sample + offset_samples,
                st.source,
                st.trigger_count,
            )
            for k, st in enumerate(recorded)
        ]
        led = self._led_evidence(len(frame_indices))
        if led is not None:
            rows = self._rows_by_led_code(
                writer, clock, frame_indices, rows, led, offset_samples
            )
        with self._write(writer, quiet=True):
            writer.write_frame_samples(rows)
        start = self.first_sample or 0
        in_recording = {c for smp, c, _ in clock.triggers() if smp >= start}
        # Where the table proves frames (LED code, camera frame numbers), the
        # drops are named from it: arrival times name the wrong triggers on
        # a busy host (one off, found under load beside two CPU hogs).
        from_table = drops_from_frame_table(
            [count if source == "led_code" else None for _, _, source, count in rows],
            min(in_recording, default=0),
        )
        if from_table is not None:
            (dropped, not_named), drops_source = from_table, "frame_table"
        else:
            dropped = [c for c in report.dropped_triggers if c in in_recording]
            not_named, drops_source = 0, "arrival_time"
        with self._write(writer, quiet=True):
            writer.append_event(
                recorded[-1].sample if recorded and recorded[-1].sample else start,
                "frame_report",
                n_frames=len(recorded),
                n_triggers=len(in_recording),
                dropped_triggers=dropped,
                dropped_triggers_from=drops_source,
                n_drops_not_named=not_named,
                extra_frames=[k for k, st in enumerate(recorded) if st.sample is None],
                timing_source="trigger" if report.n_triggers else "host-clock",
                latency_s=report.latency_s,
            )

    def _led_evidence(
        self, n_frames: int
    ) -> tuple[list[float], list[bool], list[int | None]] | None:
        with self._lock:
            led, repeats = list(self._frame_led), list(self._frame_repeat)
            numbers = list(self._frame_numbers)
        if len(led) != n_frames or any(b is None for b in led):
            return None  # no LED in view (no region): arrival times only
        return [float(b) for b in led if b is not None], repeats, numbers

    def _rows_by_led_code(
        self,
        writer: Any,
        clock: FrameClock,
        frame_indices: list[int],
        rows: list[tuple],
        led: tuple[list[float], list[bool], list[int | None]],
        offset_samples: int,
    ) -> list[tuple]:
        """Rows whose frame the LED code proves; the rest marked unproven."""
        triggers = clock.triggers()
        times = np.array([clock.frame_time(i) for i in frame_indices])
        aligned = align_recorded_frames(
            times,
            np.asarray(led[0]),
            np.asarray(led[1]),
            triggers,
            clock.led_flashes(),
            fs_hz=clock.sample_rate_hz,
            delay_samples=offset_samples,
            frame_numbers=led[2],
        )
        out: list[tuple] = []
        agree = disagree = 0
        # Where the code aligned the recording, a frame it could not place has
        # no sample ("not determined"): arrival times get such frames wrong
        # more often than not. Where it aligned nothing (no LED seen), every
        # frame keeps its arrival-time guess, marked unproven.
        code_ran = aligned.record.get("verdict") in ("aligned", "partial")
        for (k, sample, source, count), t in zip(
            rows, aligned.trigger_index, strict=True
        ):
            if t < 0 and code_ran:
                out.append((k, None, "not_determined", None))
                continue
            if t < 0:  # keep the arrival-time guess, say so
                out.append((k, sample, "unproven" if sample is not None else source,
                            count))  # fmt: skip
                continue
            trig_sample = int(aligned.trigger_samples[t])
            trig_count = int(aligned.trigger_counts[t])
            agree += count == trig_count
            disagree += count is not None and count != trig_count
            out.append((k, trig_sample + offset_samples, "led_code", trig_count))
        record = {
            **aligned.record,
            "arrival_agreed": agree,
            "arrival_disagreed": disagree,
        }
        with self._write(writer, quiet=True):
            writer.update_metadata(frame_alignment=record)
        return out

    # ------------------------------------------------------------ internals

    @contextmanager
    def _write(self, writer: Any, *, quiet: bool = False) -> Iterator[None]:
        """Run one write; a full disk or a stopped writer ends the recording."""
        try:
            yield
        except (DiskFullError, RecordingStopped, OSError) as exc:
            if quiet:  # closing a recording that already failed
                log.warning("recording: %s", exc)
                return
            self._fail(writer, exc)

    def _fail(self, writer: Any, exc: Exception) -> None:
        """Stop recording into ``writer`` and tell the session, once."""
        with self._lock:
            if self._writer is not writer:
                return  # already failed (another thread got there first)
            self._writer, self._failed = None, writer
            self.failure = exc
        self._on_failure(exc)

    def _frame_loop(self) -> None:
        """Encode and write frames off the camera thread."""
        while True:
            item = self._frames.get()
            try:
                if item is None:
                    return
                writer, frame, host_time_s, number = item
                with self._write(writer):
                    writer.append_frame(
                        frame, None, host_time_s, camera_frame_number=number
                    )
            except Exception as exc:  # an encoder error: stop recording, say so
                log.exception("writing a frame failed")
                self._fail(writer, exc)
            finally:
                self._frames.task_done()
