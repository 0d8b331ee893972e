"""RemoteServer: a running rig's session, driven and watched from another process.

ZeroMQ, two sockets (docs/remote.md says why ZeroMQ and not HTTP):

- commands: a ROUTER socket; each request is one JSON frame, each gets one
  reply (rig.remote.messages). Any number of clients; a REQ or DEALER socket
  talks to it.
- events: an XPUB socket on the next port; every low-rate ``RigEvents`` event
  (``RigEvents.all()``) is published as JSON, topic = the event's name, plus
  the server's own ``experiment_finished`` and ``events_ping``.

Both sockets need the token (ZAP, rig.remote._access) and listen on loopback
unless ``allow_remote``. Commands go through the session's own safety path
(rig.remote._commands).

Threads (none of them ever waits on a client):

- ``remote-server`` polls the command socket and the token check, answers
  ``hello``/``status``/``ping_events`` and runs ``emergency_stop`` at once,
  and queues every other command for the worker;
- ``remote-worker`` carries commands out one at a time, in order, and hands
  each reply back to ``remote-server`` over an in-process socket;
- ``remote-events`` sends the events. A listener on the emitting thread (the
  relay, the runner) only copies the event's arguments into JSON types and
  queues them: a slow or absent subscriber costs it nothing. When the queue
  (or a subscriber's ZeroMQ buffer) is full, events are dropped and ``seq``
  shows the gap.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from firmware_bridge.errors import DeviceError
from rig.remote import _access
from rig.remote._commands import Commands
from rig.remote.messages import (
    MAX_REQUEST_BYTES,
    BadRequest,
    Request,
    encode_error,
    encode_reply,
    event_body,
    parse_request,
    request_id_of,
    to_jsonable,
)

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1024 * 1024  # larger: ZeroMQ drops the connection unread
EVENT_QUEUE = 10_000  # events waiting for the publisher before drops
COMMAND_QUEUE = 32  # commands waiting for the worker before "busy"
EVENT_HWM = 10_000  # per subscriber, in ZeroMQ's buffer
IMMEDIATE = ("hello", "status", "ping_events", "emergency_stop")
CLIENT_SEEN_S = 60.0  # a client counts as connected this long after a request


class RemoteServer:
    """Serves one started Session over ZeroMQ until ``stop``.

    Parameters
    ----------
    session
        A started ``rig.core.session.Session``.
    bind
        ``HOST:PORT`` for commands (events on PORT + 1); port 0 picks free
        ports. A non-loopback host is refused unless ``allow_remote``.
    token
        The token clients must give; default a new random one.
    token_file
        Where the token is written (0600); default
        ``rig.remote._access.default_token_file(port)``. Removed by ``stop``.
    recordings_root
        Folder (or a function giving it, e.g. the GUI's recording folder) where
        ``start_recording`` and ``run_protocol(record=True)`` make recordings.
    """

    def __init__(
        self,
        session: Any,
        *,
        bind: str = f"127.0.0.1:{_access.DEFAULT_PORT}",
        allow_remote: bool = False,
        token: str | None = None,
        token_file: str | Path | None = None,
        recordings_root: str | Path | Callable[[], str | Path] = "runs",
    ) -> None:
        self.session = session
        self.host, self._port = _access.parse_bind(bind, allow_remote=allow_remote)
        self.token = token or _access.new_token()
        self._token_file = None if token_file is None else Path(token_file)
        root = recordings_root
        self._recordings_root = root if callable(root) else (lambda: Path(root))
        self.port = self.events_port = 0
        self.events_dropped = 0
        self.subscriptions = 0  # live event subscriptions (XPUB says)
        self._clients: dict[bytes, float] = {}
        self._seq = itertools.count()
        self._events: queue.Queue[tuple[str, int, float, dict[str, Any]] | None] = (
            queue.Queue(EVENT_QUEUE)
        )
        self._work: queue.Queue[tuple[list[bytes], Request] | None] = queue.Queue(
            COMMAND_QUEUE
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[tuple[Any, Callable[..., None]]] = []
        self._ctx: zmq.Context[Any] | None = None
        self.commands: Commands | None = None
        self.token_check = _access.TokenCheck(self.token)

    # ------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """The command endpoint clients connect to (``tcp://127.0.0.1:5555``)."""
        return _access.zmq_endpoint(self.host, self.port)

    @property
    def events_address(self) -> str:
        """The events endpoint."""
        return _access.zmq_endpoint(self.host, self.events_port)

    @property
    def token_file(self) -> Path:
        """Where the token was written."""
        return self._token_file or _access.default_token_file(self.port)

    @property
    def clients(self) -> int:
        """Clients that sent a command in the last minute."""
        now = time.monotonic()
        return sum(1 for t in list(self._clients.values()) if now - t < CLIENT_SEEN_S)

    def start(self) -> None:
        """Bind, write the token file, start serving; returns at once.

        Raises ``zmq.ZMQError`` (e.g. the port is in use) with nothing left open.
        """
        ctx = self._ctx = zmq.Context()
        try:
            self._open_sockets(ctx)
        except BaseException:
            ctx.destroy(linger=0)
            self._ctx = None
            raise
        _access.write_token_file(self.token_file, self.token)
        self.commands = Commands(
            self.session,
            recordings_root=self._recordings_root,
            publish=self._publish_server_event,
            server_info=self._info,
        )
        for signal in self.session.events.all():
            listener = functools.partial(self._on_rig_event, signal)
            signal.connect(listener)
            self._listeners.append((signal, listener))
        for target, name in (
            (self._serve, "remote-server"),
            (self._work_loop, "remote-worker"),
            (self._publish_loop, "remote-events"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("remote API on %s, events on %s", self.address, self.events_address)

    def stop(self) -> None:
        """Stop serving, close the sockets, remove the token file (idempotent)."""
        if self._ctx is None:
            return
        for signal, listener in self._listeners:
            signal.disconnect(listener)
        self._listeners.clear()
        self._stop.set()
        for q in (self._work, self._events):
            try:
                q.put_nowait(None)
            except queue.Full:
                pass  # the loops also watch the stop flag
        for thread in self._threads:
            thread.join(5.0)
        self._threads.clear()
        self._ctx.destroy(linger=0)
        self._ctx = None
        if self.commands is not None:
            self.commands.close()
        self.token_file.unlink(missing_ok=True)

    def __enter__(self) -> RemoteServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_sockets(self, ctx: zmq.Context[Any]) -> None:
        self._zap = ctx.socket(zmq.REP)
        self._zap.linger = 0
        self._zap.bind(_access.ZAP_ENDPOINT)  # before any secured socket binds
        self._router = self._secured(ctx, zmq.ROUTER)
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._xpub = self._secured(ctx, zmq.XPUB)
        self._xpub.setsockopt(zmq.SNDHWM, EVENT_HWM)
        self._xpub.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscribe, counted
        self._xpub.setsockopt(zmq.MAXMSGSIZE, 1024)  # subscriptions are short
        if self._port == 0:
            self.port = self._bind_any(self._router)
            self.events_port = self._bind_any(self._xpub)
        else:
            self._router.bind(_access.zmq_endpoint(self.host, self._port))
            self.port = self._port
            self.events_port = self._port + 1
            self._xpub.bind(_access.zmq_endpoint(self.host, self.events_port))
        # The worker's replies come back to the server thread through this pair.
        endpoint = f"inproc://remote-replies-{id(self)}"
        self._replies_in = ctx.socket(zmq.PAIR)
        self._replies_in.bind(endpoint)
        self._replies_out = ctx.socket(zmq.PAIR)
        self._replies_out.connect(endpoint)

    def _secured(self, ctx: zmq.Context[Any], kind: int) -> zmq.Socket[Any]:
        sock = ctx.socket(kind)
        sock.linger = 0
        sock.plain_server = True
        sock.zap_domain = _access.ZAP_DOMAIN
        if ":" in self.host:
            sock.ipv6 = True
        return sock

    def _bind_any(self, sock: zmq.Socket[Any]) -> int:
        sock.bind(_access.zmq_endpoint(self.host, 0).replace(":0", ":*"))
        endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return int(endpoint.rsplit(":", 1)[1])

    def _info(self) -> dict[str, Any]:
        return {"commands_port": self.port, "events_port": self.events_port}

    # ------------------------------------------------------------ commands

    def _serve(self) -> None:
        poller = zmq.Poller()
        for sock in (self._router, self._zap, self._replies_in):
            poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                ready = dict(poller.poll(100))
                if self._zap in ready:
                    self._zap.send_multipart(
                        self.token_check.reply(self._zap.recv_multipart())
                    )
                if self._replies_in in ready:
                    self._router.send_multipart(self._replies_in.recv_multipart())
                if self._router in ready:
                    self._on_request(self._router.recv_multipart())
            except zmq.ZMQError as exc:
                if self._stop.is_set():
                    return
                log.warning("remote: %s", exc)  # one bad exchange, not the server
            except Exception:
                log.exception("remote: the server loop failed on a message")

    def _on_request(self, frames: list[bytes]) -> None:
        envelope, payload = _split_envelope(frames)
        now = self._clients[envelope[0]] = time.monotonic()
        if len(self._clients) > 1000:  # forget clients long gone
            for identity, seen in list(self._clients.items()):
                if now - seen > CLIENT_SEEN_S:
                    del self._clients[identity]
        if len(payload) != 1:
            reply = encode_error(
                None, "BadRequest", "a request is one frame of JSON; got "
                f"{len(payload)} frames",
            )  # fmt: skip
            self._router.send_multipart([*envelope, reply])
            return
        try:
            request = parse_request(payload[0])
        except BadRequest as exc:
            request_id = _id_of(payload[0])
            self._router.send_multipart(
                [*envelope, encode_error(request_id, "BadRequest", str(exc))]
            )
            return
        if request.command in IMMEDIATE:
            self._router.send_multipart([*envelope, self._execute(request)])
            return
        try:
            self._work.put_nowait((envelope, request))
        except queue.Full:
            busy = encode_error(
                request.id, "Busy", f"{COMMAND_QUEUE} commands are waiting; try again"
            )
            self._router.send_multipart([*envelope, busy])

    def _work_loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None or self._stop.is_set():
                return  # nothing queued is carried out once stopping
            envelope, request = item
            reply = self._execute(request)
            try:
                self._replies_out.send_multipart([*envelope, reply])
            except zmq.ZMQError:
                return  # the server stopped while the command ran

    def _execute(self, request: Request) -> bytes:
        """Carry out one request; every failure becomes one error reply."""
        assert self.commands is not None
        try:
            result = self.commands.handler(request.command)(request.args)
        except REFUSALS as exc:  # the rig said no: the client is told why
            return _error_reply(request.id, exc)
        except Exception as exc:  # a bug: logged in full, the server goes on
            log.exception("remote: %s failed", request.command)
            return _error_reply(request.id, exc)
        return encode_reply(request.id, result)

    # ------------------------------------------------------------ events

    def _on_rig_event(self, signal: Any, *args: Any) -> None:
        """On the emitting thread: copy into JSON types and queue; never wait."""
        fields = {
            n: to_jsonable(a) for n, a in zip(signal.arg_names, args, strict=True)
        }
        self._queue_event(signal.name, fields)

    def _publish_server_event(self, name: str, fields: dict[str, Any]) -> None:
        self._queue_event(name, to_jsonable(fields))

    def _queue_event(self, name: str, fields: dict[str, Any]) -> None:
        seq = next(self._seq)  # taken before a drop, so a drop leaves a gap
        try:
            self._events.put_nowait((name, seq, time.time(), fields))
        except queue.Full:
            self.events_dropped += 1

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._events.get(timeout=0.1)
            except queue.Empty:
                item = None
            try:
                self._count_subscriptions()
                if item is not None:
                    name, seq, host_time_s, fields = item
                    body = event_body(name, seq, host_time_s, fields)
                    # An XPUB never blocks: a full subscriber loses the event.
                    self._xpub.send_multipart([name.encode(), body], zmq.NOBLOCK)
            except zmq.Again:
                self.events_dropped += 1
            except zmq.ZMQError as exc:
                if self._stop.is_set():
                    return
                log.warning("remote events: %s", exc)
            except Exception:
                log.exception("remote events: an event could not be published")

    def _count_subscriptions(self) -> None:
        while self._xpub.poll(0):
            message = self._xpub.recv()
            if message[:1] == b"\x01":
                self.subscriptions += 1
            elif message[:1] == b"\x00":
                self.subscriptions = max(0, self.subscriptions - 1)


# Refusals a client is told of (limits, a held stop, a busy runner, a board's
# NAK, a bad file), not bugs to log with a traceback.
REFUSALS = (ValueError, RuntimeError, OSError, DeviceError)


def _error_reply(request_id: int | str | None, exc: Exception) -> bytes:
    field = getattr(exc, "field", None)
    extra = {"field": field} if isinstance(field, str) else {}
    return encode_error(request_id, type(exc).__name__, str(exc), **extra)


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(routing envelope, payload): a REQ socket puts an empty frame between."""
    if len(frames) >= 2 and frames[1] == b"":
        return frames[:2], frames[2:]
    return frames[:1], frames[1:]


def _id_of(payload: bytes) -> int | str | None:
    """The id of a request that failed its checks, if it has one."""
    if len(payload) > MAX_REQUEST_BYTES:
        return None
    try:
        return request_id_of(json.loads(payload))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
