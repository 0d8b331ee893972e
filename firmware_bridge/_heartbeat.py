"""The host's heartbeat, on a thread that does not need Python's GIL.

The board disarms and latches HOST_LOSS when it hears nothing from the host for
300 ms; the host sends HEARTBEAT every 50 ms. A Python thread that sleeps 50 ms
must take the GIL back to wake, and on a loaded machine every other thread of
the process is in the queue for it: with two CPU-bound processes beside it and
one busy Python thread inside it, such a thread woke up to 800 ms late
(p99 430 ms), and the host lost the board in the middle of protocols. The same
loop compiled by Numba without the GIL (``nogil``), sleeping and writing
through the C library, was at most 93 ms late under the same load (2-core
development machine, load average 11–18; ``benchmarks/bench_host_loss.py``
measures it end to end).

``NogilHeartbeat``: a Python thread enters ``_beat``, compiled with
``nogil=True``, and stays there: sleep until due (``clock_nanosleep`` on
the monotonic clock, absolute, so it does not drift), write the frame
(``write`` on the port's file descriptor), note how late it was. HEARTBEAT
frames carry seqs of their own (254 and 255 in turn; commands use 0–253), so
the loop shares no counter with Python and its ACKs answer no command. A write
is one system call, and a tty's writes do not mix bytes; only when the
port's buffer is full (a board that has stopped reading) could a heartbeat
fall between the two halves of a command's partial write, and the board
then refuses both by their CRC (docs/protocol.md §9 recovers the command).

It still says that the host is alive: it stops when the process ends, when
told (``stop``, before the port closes, never after: the descriptor could be
reused), and it withholds heartbeats while the host's serial reader has not
run for ``max_stall_s`` (the reader renews a time stamp, ``renew``, on every
pass, at least every 50 ms): a host that no longer reads the board is a lost
host. Where the system permits, the thread runs in the real-time scheduling
class, so that other programs' load cannot delay it either (``_realtime``).
``ThreadHeartbeat`` is the plain Python thread, for ports without a file
descriptor (pyserial URLs in tests) and systems other than 64-bit Linux.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

log = logging.getLogger(__name__)

# Slots of the shared state (int64): written by one side, read by the other.
STOP, PULSE_NS, SENT, MAX_GAP_NS, LATE, WITHHELD, FAILED_WRITES = range(7)
N_STATE = 7
CLOCK_MONOTONIC = 1  # Linux's (time.monotonic_ns reads the same clock)
TIMER_ABSTIME = 1
EINTR = 4
CLOCK_FAILED = 2  # state[STOP] when clock_nanosleep refused: the loop ended
RETRY_NS = 1_000_000  # a write that found the port's buffer full: again in 1 ms
LATE_S = 0.15  # half the board's watchdog: a gap this long counts as late
MAX_STALL_S = 1.0  # no heartbeat once the serial reader has not run this long


def _c_library() -> tuple | None:
    """``(write, clock_nanosleep, clock_gettime)`` of the C library, or None
    where the loop cannot run (not 64-bit Linux: other clock constants, other
    ``timespec``)."""
    if not sys.platform.startswith("linux") or sys.maxsize <= 2**32:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        write, sleep, clock = libc.write, libc.clock_nanosleep, libc.clock_gettime
    except (OSError, AttributeError):
        return None
    write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    write.restype = ctypes.c_ssize_t
    sleep.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    sleep.restype = ctypes.c_int
    clock.argtypes = [ctypes.c_int, ctypes.c_void_p]
    clock.restype = ctypes.c_int
    return write, sleep, clock


_LIBC = _c_library()


@njit(nogil=True, cache=True)
def _now_ns(clock, ts):  # pragma: no cover - compiled
    clock(CLOCK_MONOTONIC, ts.ctypes.data)
    return ts[0] * 1_000_000_000 + ts[1]


@njit(nogil=True, cache=True)
def _sleep_until(sleep, due_ns, ts):  # pragma: no cover - compiled
    """Sleep until ``due_ns``; False if the clock refused (never spin on it)."""
    ts[0] = due_ns // 1_000_000_000
    ts[1] = due_ns % 1_000_000_000
    error = sleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ts.ctypes.data, 0)
    return error == 0 or error == EINTR


@njit(nogil=True, cache=True)
def _write_all(write, sleep, clock, fd, frame, n, state, ts):  # pragma: no cover
    """Write ``frame[:n]`` whole (the rest again if the buffer took part of it);
    False if it could not within one retry budget or was told to stop."""
    done = 0
    give_up = _now_ns(clock, ts) + 20 * RETRY_NS
    while done < n:
        wrote = write(fd, frame[done:].ctypes.data, n - done)
        if wrote > 0:
            done += wrote
            continue
        if state[STOP] != 0 or _now_ns(clock, ts) > give_up:
            return False
        if not _sleep_until(sleep, _now_ns(clock, ts) + RETRY_NS, ts):
            state[STOP] = CLOCK_FAILED
            return False
    return True


@njit(nogil=True, cache=True)
def _beat(
    write, sleep, clock, fd, frames, lengths, period_ns, late_ns, max_stall_ns, state
):  # pragma: no cover - compiled; its behaviour is tested through the link
    """The heartbeat loop, without the GIL, until ``state[STOP]``."""
    ts = np.zeros(2, np.int64)  # struct timespec: tv_sec, tv_nsec
    due = _now_ns(clock, ts)
    last = due
    k = 0
    while state[STOP] == 0:
        due += period_ns
        if not _sleep_until(sleep, due, ts):
            state[STOP] = CLOCK_FAILED
        if state[STOP] != 0:
            break
        now = _now_ns(clock, ts)
        if due < now - period_ns:  # slept long past it: a period from now
            due = now
        if now - state[PULSE_NS] > max_stall_ns:
            state[WITHHELD] += 1  # the host's reader has stopped: say nothing
            continue
        which = k % frames.shape[0]
        if not _write_all(
            write, sleep, clock, fd, frames[which], lengths[which], state, ts
        ):
            state[FAILED_WRITES] += 1
            continue
        k += 1
        now = _now_ns(clock, ts)
        gap = now - last
        last = now
        state[SENT] += 1
        if gap > state[MAX_GAP_NS]:
            state[MAX_GAP_NS] = gap
        if gap > late_ns:
            state[LATE] += 1
    return 0


class NogilHeartbeat:
    """HEARTBEAT frames written to ``fd`` every ``period_s`` from ``_beat``."""

    def __init__(
        self,
        fd: int,
        frames: Sequence[bytes],
        period_s: float,
        *,
        max_stall_s: float = MAX_STALL_S,
    ) -> None:
        assert _LIBC is not None, "NogilHeartbeat.available() first"
        width = max(len(f) for f in frames)
        self._frames = np.zeros((len(frames), width), np.uint8)
        for row, frame in zip(self._frames, frames, strict=True):
            row[: len(frame)] = np.frombuffer(frame, np.uint8)
        self._lengths = np.array([len(f) for f in frames], np.int64)
        self.state = np.zeros(N_STATE, np.int64)
        self._max_stall_ns = round(max_stall_s * 1e9)
        self.state[PULSE_NS] = time.monotonic_ns()
        args = (
            *_LIBC, fd, self._frames, self._lengths, round(period_s * 1e9),
            round(LATE_S * 1e9), self._max_stall_ns, self.state,
        )  # fmt: skip
        self._thread = threading.Thread(
            target=_beat, args=args, name="heartbeat", daemon=True
        )
        self._thread.start()
        self.realtime = _realtime(self._thread.native_id)

    @staticmethod
    def available() -> bool:
        """Whether this system can run the loop (64-bit Linux)."""
        return _LIBC is not None

    def renew(self) -> None:
        """The host's serial reader ran just now (cheap: it runs every pass)."""
        now = time.monotonic_ns()
        stalled_ns = now - int(self.state[PULSE_NS])
        self.state[PULSE_NS] = now
        if stalled_ns > self._max_stall_ns:  # rare: say so, with when
            log.warning(
                "the serial reader did not run for %.2f s: heartbeats were "
                "withheld (the board disarms after 0.3 s of silence)",
                stalled_ns / 1e9,
            )

    def stop(self) -> None:
        """Stop writing; return once the loop has left (within one period)."""
        self.state[STOP] = 1
        self._thread.join(timeout=2.0)

    @property
    def max_gap_s(self) -> float:
        """The longest time between two heartbeats written."""
        return float(self.state[MAX_GAP_NS]) / 1e9

    @property
    def late(self) -> int:
        """Heartbeats written more than LATE_S after the one before."""
        return int(self.state[LATE])

    @property
    def withheld(self) -> int:
        """Heartbeats not written because the serial reader had stalled."""
        return int(self.state[WITHHELD])


def _realtime(thread_id: int | None) -> bool:
    """Put the heartbeat thread in the real-time class (SCHED_RR, the lowest
    priority) where the system permits (root, CAP_SYS_NICE or an RLIMIT_RTPRIO):
    other programs' load then cannot delay it either (at a load average of 30
    on 2 cores, an ordinary thread woke up to 0.9 s late). It sleeps between
    heartbeats and cannot spin (a refused sleep ends it), so it takes next to
    nothing from anyone. Where not permitted it stays an ordinary thread."""
    if thread_id is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(thread_id, os.SCHED_RR, os.sched_param(1))
    except OSError:  # not permitted (EPERM), or the thread has already ended
        return False
    return True


class ThreadHeartbeat:
    """The same from a plain Python thread (it needs the GIL to wake):
    ``send()`` writes one heartbeat."""

    def __init__(self, send: Callable[[], None], period_s: float) -> None:
        self._send = send
        self._period_s = period_s
        self._stop = threading.Event()
        self.max_gap_s = 0.0
        self.late = 0
        self.withheld = 0  # it never withholds: it stops with the interpreter
        self.realtime = False
        self._thread = threading.Thread(
            target=self._loop, name="heartbeat", daemon=True
        )
        self._thread.start()

    def renew(self) -> None:
        """Nothing to renew: this thread stops with the interpreter."""

    def stop(self) -> None:
        """Stop writing; return once the thread has ended."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        last = due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self._send()
            except Exception:  # the link has failed: it says so itself
                return
            now = time.monotonic()
            gap, last = now - last, now
            self.max_gap_s = max(self.max_gap_s, gap)
            self.late += gap > LATE_S
            due += self._period_s
            if due <= now:  # it was late: the next one a period after it
                due = now + self._period_s
