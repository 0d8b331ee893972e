"""SerialLink: one open port, a reader thread, framed writes, reply matching, retries.

Threads and ownership:

* the **reader thread** owns the port's read side and the StreamDecoder. It hands
  every ``Decoded`` batch to the registered listeners *on the reader thread*:
  listeners must be quick (copy into a ring buffer, put on a queue) and never do
  disk or GUI work there.
* any thread may call ``send``/``request``; a frame is encoded by its sender
  and its write to the port is serialised by a lock held for that write only.
* the heartbeat (``start_heartbeat``) has a thread and a path of its own that
  need neither Python's GIL nor any lock (firmware_bridge._heartbeat): frames
  encoded in advance with seqs of their own (``HEARTBEAT_SEQS``; commands use
  the others), written to the port's descriptor. Nothing slow elsewhere in the
  process can hold it up; it stops when the reader stops running
  (docs/architecture.md, Threads).
* when the port fails (unplug: pyserial raises, EIO) the reader records a
  ``DeviceDisconnected`` error, fails the pending requests and calls the error
  listeners; everything already delivered stays delivered.
* a listener that raises does not stop the reader: the exception is counted
  (``listener_errors``), logged and reported to the error listeners as a
  ``LinkError(fatal=False)``, and reading goes on. Anything else that escapes on
  the reader thread ends the link as a ``LinkError(fatal=True)``, reported like an
  unplug, never as a thread that silently died.

Retries (docs/protocol.md §9). ``request`` looks the command up in
``COMMAND_RETRY``:

* ``Retry.RESEND`` (idempotent: HELLO, GET_STATUS, CONFIGURE, ...) is sent again,
  with a new seq, when its reply is late (``timeout_s`` per attempt) or when a
  damaged frame arrived after it was sent and no reply followed within the
  board's answer time (``RetryPolicy.reply_window_s``). A reply to any of its
  sends answers it. Bounded: answered within ``attempts × timeout_s`` in all,
  at most ``max_sends`` sends, or ``DeviceTimeout``.
* ``Retry.RECONCILE`` (STIMULATE, LED_PULSE, START_STREAM, CAMERA_TRIGGER with a
  period) is never resent blindly. After its timeout the link looks for evidence
  for ``reconcile_s``: a late ACK/NAK, or for STIMULATE a STIM_DELIVERED carrying
  its seq (pulse 0, same parameters), settles it ("reconciled"). A GET_STATUS
  probe whose reply arrives with no board frame damaged or missing since the
  command was sent proves the board never received it (the board answers every
  command it receives, in order): it is then resent once. Otherwise the link
  raises ``CommandOutcomeUnknown``.

``request_counters`` counts all of it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum

import serial

from firmware_bridge._heartbeat import NogilHeartbeat, ThreadHeartbeat
from firmware_bridge.errors import (
    CommandOutcomeUnknown,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    LinkError,
)
from firmware_bridge.protocol import (
    Ack,
    CameraTrigger,
    Decoded,
    Fault,
    FaultCode,
    GetStatus,
    Heartbeat,
    HelloReply,
    LinkCounters,
    Message,
    MsgType,
    Nak,
    Status,
    StimDelivered,
    Stimulate,
    StreamDecoder,
    encode_message,
)
from firmware_bridge.protocol.stream import warm_up

log = logging.getLogger(__name__)

# HEARTBEAT's seqs, in turn (two: a repeated seq never looks like a duplicate);
# commands take 0–253 (docs/protocol.md §1).
HEARTBEAT_SEQS = (254, 255)
N_COMMAND_SEQS = 254

SampleListener = Callable[[Decoded], None]
ErrorListener = Callable[[DeviceError], None]
_REPLIES = (Ack, Nak, HelloReply, Status)


class Retry(Enum):
    """What the link may do when a command's reply is late or damaged."""

    RESEND = "resend"  # idempotent: sending it again has no further effect
    RECONCILE = "reconcile"  # each execution has an effect: look for evidence


# Every host->board command (docs/protocol.md §9 gives the reasons).
COMMAND_RETRY: dict[MsgType, Retry] = {
    MsgType.HELLO: Retry.RESEND,  # no state
    MsgType.GET_STATUS: Retry.RESEND,  # read-only
    MsgType.CONFIGURE: Retry.RESEND,  # the same values again leave the same state
    MsgType.START_STREAM: Retry.RECONCILE,  # restarts the stream at the board's now
    MsgType.STOP_STREAM: Retry.RESEND,  # stays stopped; the ACK repeats the index
    MsgType.HEARTBEAT: Retry.RESEND,  # never awaited: the next one is the retry
    MsgType.ARM: Retry.RESEND,  # armed stays armed (NAKed if a fault latched)
    MsgType.DISARM: Retry.RESEND,  # the emergency stop must get through
    MsgType.RESET_FAULT: Retry.RESEND,  # cleared stays cleared; board stays disarmed
    MsgType.STIMULATE: Retry.RECONCILE,  # a second one is a second stimulus
    MsgType.TEST_SIGNAL: Retry.RESEND,  # a state, not an event
    MsgType.LED_PULSE: Retry.RECONCILE,  # a second flash is a second sync mark
    MsgType.CAMERA_TRIGGER: Retry.RECONCILE,  # restarts the count (0 = off: RESEND)
}


def retry_kind(message: Message) -> Retry:
    """How ``message`` is retried; anything unknown is treated as RECONCILE."""
    if isinstance(message, CameraTrigger) and message.period_us == 0:
        return Retry.RESEND  # off stays off
    return COMMAND_RETRY.get(message.TYPE, Retry.RECONCILE)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of ``SerialLink.request``'s retries."""

    # A RESEND command is answered within attempts × timeout_s, or DeviceTimeout:
    # a silent board gets `attempts` sends, a damaging link up to max_sends.
    attempts: int = 3
    max_sends: int = 64
    # The board answers within 20 ms (§3); 30 ms more for USB and the host's
    # scheduler. A damaged frame and no reply by then: the reply was that frame.
    reply_window_s: float = 0.05
    reconcile_s: float = 3.0  # after a RECONCILE command's timeout: evidence wait


@dataclass(frozen=True, slots=True)
class RequestCounters:
    """Cumulative counts of ``request`` outcomes (all since the link was made)."""

    requests: int = 0  # commands awaited with request()
    retries: int = 0  # resends of RESEND commands
    early_retries: int = 0  # of which after a damaged frame, before the timeout
    timeouts: int = 0  # requests that raised DeviceTimeout (any kind)
    reconciled: int = 0  # RECONCILE commands settled by late or indirect evidence
    resent: int = 0  # RECONCILE commands resent: the board provably missed them
    unknown: int = 0  # RECONCILE commands raised as CommandOutcomeUnknown


# What is unknown when a RECONCILE command stays unsettled, and what tells.
_UNKNOWN_EFFECT = {
    MsgType.STIMULATE: "the stimulus may or may not have been delivered; the "
    "recording's events (STIM_DELIVERED) tell",
    MsgType.LED_PULSE: "the LED may or may not have flashed; the recording's "
    "events (LED_FLASHED) tell",
    MsgType.START_STREAM: "the stream may or may not have started; DATA frames "
    "arriving tell",
    MsgType.CAMERA_TRIGGER: "the camera trigger may or may not have (re)started; "
    "the recording's events (CAMERA_TRIGGERED) tell",
}


def _damage(c: LinkCounters) -> int:
    """Board frames damaged or missing so far (a reply may have been one)."""
    return (
        c.frames_corrupt
        + c.frames_malformed
        + c.frames_lost
        + c.frames_out_of_order
        + c.reboots
    )


class _Pending:
    """One request in flight; registered under the seq of each of its sends."""

    __slots__ = ("damaged", "done", "reconciled", "replied_s", "reply", "stim", "wake")

    def __init__(
        self, wake: threading.Event | None = None, stim: Stimulate | None = None
    ) -> None:
        self.done = threading.Event()
        self.wake = wake or threading.Event()  # set on a reply or on damage
        self.reply: Message | DeviceError | None = None
        self.replied_s = 0.0  # monotonic time the reply was read off the port
        self.damaged = False  # a damaged frame arrived since the last send
        self.stim = stim  # a STIMULATE: a matching STIM_DELIVERED answers it
        self.reconciled = False  # answered by STIM_DELIVERED, not by its reply


class SerialLink:
    """Framed, checksummed traffic over an open pyserial port."""

    def __init__(
        self,
        port: serial.Serial,
        *,
        n_channels: int = 1,
        retry: RetryPolicy | None = None,
    ) -> None:
        warm_up()
        self.port = port
        self.retry = retry or RetryPolicy()
        # START/STOP_STREAM ACKs bound the stream only if this link sent the
        # command: a forged or stray one cannot move the sample accounting.
        self.decoder = StreamDecoder(n_channels, check_acks=True)
        self._write_lock = threading.Lock()  # held across one frame's write only
        self.request_log: deque[tuple[str, float, float]] = deque(maxlen=1000)
        self._pending_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._counts = dict.fromkeys((f.name for f in fields(RequestCounters)), 0)
        self._overflows = 0  # FAULT(TX_OVERFLOW) reports received
        self._damage = 0  # _damage(decoder counters) + overflows, by the reader
        # The host seq of commands (docs/protocol.md §1): next() on a count is
        # one C call, atomic under the GIL, so no lock hands seqs out.
        self._seqs = itertools.count()
        self._heartbeat: NogilHeartbeat | ThreadHeartbeat | None = None
        self._listeners: list[SampleListener] = []
        self._error_listeners: list[ErrorListener] = []
        self._error: DeviceError | None = None
        self.listener_errors = 0  # exceptions raised by listeners (reader survived)
        self._stop = threading.Event()
        self._reader = threading.Thread(
            target=self._read_loop, name="serial-reader", daemon=True
        )

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the reader thread."""
        self._reader.start()

    def close(self) -> None:
        """Stop the heartbeat and the reader, then close the port (idempotent)."""
        self.stop_heartbeat()  # before the port: its descriptor could be reused
        self._stop.set()
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(timeout=2.0)
        try:
            self.port.close()
        except (OSError, serial.SerialException):
            pass

    @property
    def error(self) -> DeviceError | None:
        """The error that ended the link, if any."""
        return self._error

    @property
    def counters(self) -> LinkCounters:
        """Decoder counters (bytes, frames, samples received and lost)."""
        return self.decoder.counters

    @property
    def request_counters(self) -> RequestCounters:
        """Requests, retries, reconciled commands (a snapshot)."""
        with self._pending_lock:
            return RequestCounters(**self._counts)

    def add_listener(self, listener: SampleListener) -> None:
        """Call ``listener(decoded)`` on the reader thread for every batch."""
        self._listeners.append(listener)

    def remove_listener(self, listener: SampleListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_error_listener(self, listener: ErrorListener) -> None:
        """Call ``listener(error)`` once when the link fails (``error`` is then set),
        and for each listener exception the reader survived (``LinkError`` with
        ``fatal`` False). Called on the reader thread."""
        self._error_listeners.append(listener)

    # ------------------------------------------------------------------ traffic

    def send(self, message: Message) -> int:
        """Write one frame; return the seq it was sent with."""
        if self._error is not None:
            raise self._error
        seq = self._next_seq()
        self.decoder.expect_ack(seq, message.TYPE)
        self._write(encode_message(message, seq))
        return seq

    def start_heartbeat(self, period_s: float) -> None:
        """Write HEARTBEAT every ``period_s`` from a thread of its own, without
        the GIL where the system allows (firmware_bridge._heartbeat), until
        ``stop_heartbeat``, the reader stops running, or the link closes."""
        if self._heartbeat is not None:
            return
        frames = [encode_message(Heartbeat(), seq) for seq in HEARTBEAT_SEQS]
        fd = _descriptor(self.port)
        if fd is not None and NogilHeartbeat.available():
            self._heartbeat = NogilHeartbeat(fd, frames, period_s)
        else:
            beats = itertools.cycle(frames)
            self._heartbeat = ThreadHeartbeat(
                lambda: self._write(next(beats)), period_s
            )

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat (the board then faults within 300 ms if armed)."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    @property
    def heartbeat(self) -> NogilHeartbeat | ThreadHeartbeat | None:
        """The running heartbeat (``max_gap_s``, ``late``, ``withheld``,
        ``realtime``), or None."""
        return self._heartbeat

    def _next_seq(self) -> int:
        return next(self._seqs) % N_COMMAND_SEQS

    def request(
        self,
        message: Message,
        *,
        timeout_s: float = 1.0,
        attempts: int | None = None,
    ) -> Message:
        """Send ``message`` and return its reply (ACK, NAK or a reply message).

        Retried as ``retry_kind(message)`` says (module docstring): ``timeout_s``
        is per attempt; ``attempts`` overrides the policy's for a RESEND command.
        Raises ``DeviceTimeout`` when a RESEND command is never answered,
        ``CommandOutcomeUnknown`` when a RECONCILE command's effect is unknown.
        A STIMULATE answered by its STIM_DELIVERED returns an ``Ack`` built from
        it (its onset; ``request_counters.reconciled`` counts it).
        """
        if self._error is not None:
            raise self._error
        self._count("requests")
        stim = message if isinstance(message, Stimulate) else None
        pending = _Pending(stim=stim)
        seqs: list[int] = []
        answered = False
        try:
            if retry_kind(message) is Retry.RESEND:
                n = self.retry.attempts if attempts is None else attempts
                written_s = self._resend_until_answered(
                    message, pending, seqs, timeout_s, max(1, n)
                )
            else:
                written_s = self._reconcile(message, pending, seqs, timeout_s)
            answered = True
        finally:
            self._forget(message, pending, seqs, answered=answered)
        reply = pending.reply
        if isinstance(reply, DeviceError):
            raise reply
        assert reply is not None
        # For latency measurements: when the answered frame was handed to the
        # port, and when its reply was resolved (monotonic seconds).
        self.request_log.append((type(message).__name__, written_s, pending.replied_s))
        return reply

    # ----------------------------------------------------------------- retries

    def _resend_until_answered(
        self,
        message: Message,
        pending: _Pending,
        seqs: list[int],
        timeout_s: float,
        attempts: int,
    ) -> float:
        """RESEND: send until answered, within ``attempts × timeout_s`` in all;
        return when the last send was written."""
        budget_end = time.monotonic() + attempts * timeout_s
        sends = 0
        while True:
            written_s = self._send_pending(message, pending, seqs)
            sends += 1
            deadline = min(written_s + timeout_s, budget_end)
            outcome = self._wait(pending, written_s, deadline, early=True)
            if outcome == "reply":
                return written_s
            if time.monotonic() >= budget_end or sends >= self.retry.max_sends:
                self._count("timeouts")
                raise DeviceTimeout(
                    f"no reply to {type(message).__name__} (seq "
                    f"{', '.join(map(str, seqs))}) within {timeout_s:g} s on "
                    f"{self.port.name}; sent {sends} times in "
                    f"{attempts * timeout_s:g} s"
                )
            self._count("retries")
            if outcome == "damaged":
                self._count("early_retries")
            log.info(
                "%s seq %d: %s, sending it again",
                type(message).__name__,
                seqs[-1],
                "reply damaged" if outcome == "damaged" else "no reply",
            )

    def _reconcile(
        self, message: Message, pending: _Pending, seqs: list[int], timeout_s: float
    ) -> float:
        """RECONCILE: wait, then look for evidence; resend only if provably missed."""
        name = message.TYPE.name
        resent = False
        while True:
            damage_at_send = self._damage
            written_s = self._send_pending(message, pending, seqs)
            deadline = written_s + timeout_s
            on_time = self._wait(pending, written_s, deadline, early=False) == "reply"
            verdict = (
                "reply"
                if on_time
                else self._look_for_evidence(pending, timeout_s, damage_at_send)
            )
            if verdict == "reply":
                if isinstance(pending.reply, Message) and (
                    pending.reconciled or not on_time
                ):
                    self._settled(name, seqs[-1], pending)
                return written_s
            if verdict == "missed" and not resent:
                # The board answered a later command and no board frame went
                # missing: it never received this one. Once more, then.
                resent = True
                self._count("resent")
                log.warning("%s seq %d never reached the board: resent", name, seqs[-1])
                continue
            self._count("timeouts")
            sent = ", ".join(map(str, seqs))
            if verdict == "missed":
                raise DeviceTimeout(
                    f"{name} (seq {sent}) never reached the board on "
                    f"{self.port.name}, sent twice: it was not executed"
                )
            self._count("unknown")
            effect = _UNKNOWN_EFFECT.get(message.TYPE, "its effect is unknown")
            raise CommandOutcomeUnknown(
                f"no reply to {name} (seq {sent}) within {timeout_s:g} s on "
                f"{self.port.name}, nor evidence within {self.retry.reconcile_s:g} s "
                f"more: {effect}",
                command=name,
                seqs=tuple(seqs),
            )

    def _look_for_evidence(
        self, pending: _Pending, timeout_s: float, damage_at_send: int
    ) -> str:
        """After a RECONCILE command's timeout: "reply" (a late reply, or its
        event), "missed" (the board provably never received it) or "unknown".

        GET_STATUS probes (another every ``timeout_s``) share the command's wake
        event. The board answers in command order, so when a probe's reply is in,
        any reply to the command came before it; if no board frame was damaged
        or went missing since the command was sent, there was none.
        """
        probes: list[_Pending] = []
        probe_seqs: list[int] = []
        deadline = time.monotonic() + self.retry.reconcile_s
        probed_s = -float("inf")
        window_clean = True
        try:
            while True:
                probe_done = any(p.done.is_set() for p in probes)
                if pending.done.is_set():  # set before any later probe's
                    return "reply"
                if self._error is not None:
                    raise self._error
                if probe_done and window_clean:
                    if self._damage == damage_at_send:
                        return "missed"
                    window_clean = False  # only evidence can settle it now
                now = time.monotonic()
                if now >= deadline:
                    return "unknown"
                if window_clean and now - probed_s >= timeout_s:
                    probe = _Pending(wake=pending.wake)
                    probed_s = self._send_pending(GetStatus(), probe, probe_seqs)
                    probes.append(probe)
                    continue
                wait_s = deadline - now
                if window_clean:
                    wait_s = min(wait_s, probed_s + timeout_s - now)
                pending.wake.wait(max(0.0, wait_s))
                pending.wake.clear()
        finally:
            with self._pending_lock:
                for seq in probe_seqs:
                    self._pending.pop(seq, None)

    def _settled(self, name: str, seq: int, pending: _Pending) -> None:
        self._count("reconciled")
        how = "its STIM_DELIVERED" if pending.reconciled else "its late reply"
        log.warning(
            "%s seq %d: no timely reply; settled by %s: %r",
            name, seq, how, pending.reply,
        )  # fmt: skip

    def _send_pending(
        self,
        message: Message,
        pending: _Pending,
        seqs: list[int],
    ) -> float:
        """Write ``message`` with a new seq answering ``pending``; return when."""
        if self._error is not None:
            raise self._error
        seq = self._next_seq()
        with self._pending_lock:  # before the write: the reply may come at once
            self._pending[seq] = pending
            pending.damaged = False
        seqs.append(seq)
        self.decoder.expect_ack(seq, message.TYPE)
        self._write(encode_message(message, seq))
        return time.monotonic()

    def _wait(
        self, pending: _Pending, written_s: float, deadline: float, *, early: bool
    ) -> str:
        """Wait for a reply: "reply", "timeout", or (``early``) "damaged" when a
        damaged frame came and no reply within the board's answer time."""
        while not pending.done.is_set():
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if early and pending.damaged:
                window_end = min(written_s + self.retry.reply_window_s, deadline)
                if pending.done.wait(max(0.0, window_end - now)):
                    break
                return "damaged" if time.monotonic() < deadline else "timeout"
            pending.wake.wait(deadline - now)
            pending.wake.clear()
        return "reply"

    def _forget(
        self, message: Message, pending: _Pending, seqs: list[int], *, answered: bool
    ) -> None:
        """Unregister a finished request's seqs. An ACKed one keeps the decoder's
        ACK expectations of its other sends: a late duplicate STOP_STREAM ACK is
        then no stray ACK (each expectation is consumed by its ACK). A NAK or a
        timeout consumed none."""
        with self._pending_lock:
            for seq in seqs:
                if self._pending.get(seq) is pending:
                    del self._pending[seq]
        if not answered:
            for seq in seqs:
                self.decoder.forget_ack(seq, message.TYPE)
        elif isinstance(pending.reply, Nak):
            self.decoder.forget_ack(pending.reply.cmd_seq, message.TYPE)

    def _count(self, name: str) -> None:
        with self._pending_lock:
            self._counts[name] += 1

    # ----------------------------------------------------------------- internal

    def _write(self, frame: bytes) -> None:
        try:
            with self._write_lock:  # one frame's bytes never mix with another's
                self.port.write(frame)
        except (OSError, serial.SerialException) as exc:
            # Unplugged: a write may notice before the reader does; say the same.
            self._fail(
                DeviceDisconnected(
                    f"serial port {self.port.name} went away (cannot write: {exc}). "
                    "Samples received before this are kept."
                )
            )
            raise self._error from exc  # type: ignore[misc]

    def _read_loop(self) -> None:
        try:
            self._read_forever()
        except Exception as exc:  # a bug must not leave a silently dead reader
            log.exception("serial reader on %s failed", self.port.name)
            self._fail(
                LinkError(
                    f"the serial reader on {self.port.name} failed: "
                    f"{type(exc).__name__}: {exc}. Samples received before this "
                    "are kept.",
                    fatal=True,
                )
            )

    def _read_forever(self) -> None:
        port = self.port
        while not self._stop.is_set():
            heartbeat = self._heartbeat
            if heartbeat is not None:  # this reader runs: the host is alive
                heartbeat.renew()
            try:
                data = port.read(max(1, port.in_waiting))
            except (OSError, serial.SerialException, TypeError, AttributeError) as exc:
                # pyserial raises SerialException (or OSError EIO) when the device
                # disappears; TypeError/AttributeError when the port was closed
                # under us by close() from another thread.
                if not self._stop.is_set():
                    self._fail(
                        DeviceDisconnected(
                            f"serial port {port.name} went away: {exc}. Samples "
                            "received before this are kept."
                        )
                    )
                return
            if not data:
                continue
            decoded = self.decoder.feed(data)
            # Frames the board dropped itself may be a multiple of 256, with
            # no gap in its seq: it says so, and that counts as damage too.
            self._overflows += sum(
                isinstance(m, Fault) and m.code == FaultCode.TX_OVERFLOW
                for m in decoded.messages
            )
            damage = _damage(self.decoder.counters) + self._overflows
            if damage != self._damage:
                self._damage = damage
                self._damaged()
            for message in decoded.messages:
                if isinstance(message, _REPLIES):
                    self._resolve(message.cmd_seq, message)
                elif isinstance(message, StimDelivered) and message.pulse_index == 0:
                    self._stim_evidence(message)
            for listener in list(self._listeners):
                try:
                    listener(decoded)
                except Exception as exc:
                    self._listener_failed(listener, exc)

    def _listener_failed(self, listener: SampleListener, exc: Exception) -> None:
        self.listener_errors += 1
        log.error("listener %r failed on the serial reader", listener, exc_info=exc)
        error = LinkError(
            f"a listener on {self.port.name} failed: {type(exc).__name__}: {exc}; "
            "the link keeps reading",
            fatal=False,
        )
        self._tell_error_listeners(error)

    def _tell_error_listeners(self, error: DeviceError) -> None:
        for listener in list(self._error_listeners):
            try:
                listener(error)
            except Exception:
                log.exception("error listener %r failed", listener)

    def _resolve(
        self, seq: int, reply: Message | DeviceError, *, reconciled: bool = False
    ) -> None:
        with self._pending_lock:
            pending = self._pending.pop(seq, None)
            if pending is None or pending.done.is_set():
                return  # unsolicited, or a second answer (an earlier send's)
            pending.reply = reply
            pending.reconciled = reconciled
            pending.replied_s = time.monotonic()
        pending.done.set()
        pending.wake.set()

    def _damaged(self) -> None:
        """A board frame was damaged or lost: tell every request in flight."""
        with self._pending_lock:
            waiting = list(self._pending.values())
        for pending in waiting:
            pending.damaged = True
            pending.wake.set()

    def _stim_evidence(self, event: StimDelivered) -> None:
        """The first pulse of a STIMULATE started: it answers that STIMULATE if
        its ACK has not (lost or late). Matched by the command's seq and its
        parameters, among requests in flight only."""
        with self._pending_lock:
            pending = self._pending.get(event.cmd_seq)
        stim = pending.stim if pending is not None else None
        if stim is None or (
            event.commanded_mvpp,
            event.duration_us,
            event.cathode,
            event.anode,
            event.polarity,
        ) != (
            stim.amplitude_mvpp,
            stim.duration_us,
            stim.cathode,
            stim.anode,
            stim.polarity,
        ):
            return
        ack = Ack(int(MsgType.STIMULATE), event.cmd_seq, event.sample_index)
        self._resolve(event.cmd_seq, ack, reconciled=True)

    def _fail(self, error: DeviceError) -> None:
        if self._error is not None:
            return
        self._error = error
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for item in set(pending.values()):
            if not item.done.is_set():
                item.reply = error
            item.done.set()
            item.wake.set()
        self._tell_error_listeners(error)


def _descriptor(port: serial.Serial) -> int | None:
    """The port's file descriptor, or None (a pyserial URL handler has none)."""
    try:
        fd = port.fileno()
    except (AttributeError, OSError, ValueError, serial.SerialException):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None
