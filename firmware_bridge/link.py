"""SerialLink: one open port, a reader thread, framed writes, reply matching.

Threads and ownership:

* the **reader thread** owns the port's read side and the StreamDecoder. It hands
  every ``Decoded`` batch to the registered listeners *on the reader thread*:
  listeners must be quick (copy into a ring buffer, put on a queue) and never do
  disk or GUI work there.
* any thread may call ``send``/``request``; writes are serialised by a lock.
* when the port fails (unplug: pyserial raises, EIO) the reader records a
  ``DeviceDisconnected`` error, fails the pending requests and calls the error
  listeners; everything already delivered stays delivered.
* a listener that raises does not stop the reader: the exception is counted
  (``listener_errors``), logged and reported to the error listeners as a
  ``LinkError(fatal=False)``, and reading goes on. Anything else that escapes on
  the reader thread ends the link as a ``LinkError(fatal=True)``, reported like an
  unplug, never as a thread that silently died.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import serial

from firmware_bridge.errors import (
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    LinkError,
)
from firmware_bridge.protocol import (
    Ack,
    Decoded,
    HelloReply,
    LinkCounters,
    Message,
    Nak,
    Status,
    StreamDecoder,
    encode_message,
)
from firmware_bridge.protocol.stream import warm_up

log = logging.getLogger(__name__)

SampleListener = Callable[[Decoded], None]
ErrorListener = Callable[[DeviceError], None]
_REPLIES = (Ack, Nak, HelloReply, Status)


class _Pending:
    __slots__ = ("done", "replied_s", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Message | DeviceError | None = None
        self.replied_s = 0.0  # monotonic time the reply was read off the port


class SerialLink:
    """Framed, checksummed traffic over an open pyserial port."""

    def __init__(self, port: serial.Serial, *, n_channels: int = 1) -> None:
        warm_up()
        self.port = port
        # START/STOP_STREAM ACKs bound the stream only if this link sent the
        # command: a forged or stray one cannot move the sample accounting.
        self.decoder = StreamDecoder(n_channels, check_acks=True)
        self._write_lock = threading.Lock()
        self.request_log: deque[tuple[str, float, float]] = deque(maxlen=1000)
        self._pending_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._seq = 0
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
        """Stop the reader and close the port (idempotent)."""
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
        with self._write_lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            self.decoder.expect_ack(seq, message.TYPE)
            self._write(encode_message(message, seq))
        return seq

    def request(self, message: Message, *, timeout_s: float = 1.0) -> Message:
        """Send ``message`` and wait for the reply carrying its seq."""
        if self._error is not None:
            raise self._error
        pending = _Pending()
        with self._write_lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            with self._pending_lock:
                self._pending[seq] = pending
            self.decoder.expect_ack(seq, message.TYPE)
            try:
                self._write(encode_message(message, seq))
            except DeviceError:
                with self._pending_lock:
                    self._pending.pop(seq, None)
                self.decoder.forget_ack(seq, message.TYPE)
                raise
            written_s = time.monotonic()
        replied = pending.done.wait(timeout_s)
        # An ACK consumed the expectation already; a NAK or a timeout did not.
        self.decoder.forget_ack(seq, message.TYPE)
        if not replied:
            with self._pending_lock:
                self._pending.pop(seq, None)
            if self._error is not None:
                raise self._error
            raise DeviceTimeout(
                f"no reply to {type(message).__name__} (seq {seq}) within "
                f"{timeout_s:g} s on {self.port.name}"
            )
        if isinstance(pending.reply, DeviceError):
            raise pending.reply
        assert pending.reply is not None
        # For latency measurements: when the frame was handed to the port, and
        # when its reply was resolved (monotonic seconds).
        self.request_log.append((type(message).__name__, written_s, pending.replied_s))
        return pending.reply

    # ----------------------------------------------------------------- internal

    def _write(self, frame: bytes) -> None:
        try:
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
            for message in decoded.messages:
                if isinstance(message, _REPLIES):
                    self._resolve(message.cmd_seq, message)
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

    def _resolve(self, seq: int, reply: Message | DeviceError) -> None:
        with self._pending_lock:
            pending = self._pending.pop(seq, None)
        if pending is not None:
            pending.reply = reply
            pending.replied_s = time.monotonic()
            pending.done.set()

    def _fail(self, error: DeviceError) -> None:
        if self._error is not None:
            return
        self._error = error
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for item in pending.values():
            item.reply = error
            item.done.set()
        self._tell_error_listeners(error)
