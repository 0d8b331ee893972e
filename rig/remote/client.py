"""A small client of the remote API, used from a notebook like a Session.

Example (``neurorig serve --sim`` running; the token it printed)::

    from rig.remote import connect

    with connect("tcp://127.0.0.1:5555", token=TOKEN) as rig:
        with rig.subscribe(["response_measured"]) as responses:
            rig.arm()
            onset = rig.stimulate(amplitude_vpp=4.0, duration_s=3e-3)
            print(responses.next(timeout_s=5).args["result"]["latency_s"])
        rig.emergency_stop()

Every method sends one command and waits for its reply; a refusal raises
``RemoteError`` with the rig's own message (``kind`` is the error's type on the
server: ``SafetyError``, ``EmergencyStopHeld``, ``BadRequest``…). Events come
through a ``Subscription``: an iterator, or a callback on a thread of its own.
The client imports no part of the rig's core, so it runs anywhere pyzmq does.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from rig.remote import _access
from rig.remote.messages import POLARITIES, encode_request

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = f"tcp://127.0.0.1:{_access.DEFAULT_PORT}"


class RemoteError(RuntimeError):
    """The server refused a command (or could not be reached).

    ``kind`` is the type of the error on the server (``SafetyError``,
    ``EmergencyStopHeld``, ``BadRequest``, ...); ``field`` the limit's field
    when a safety limit refused a pulse.
    """

    def __init__(self, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


class AuthenticationFailed(RemoteError):
    """The server refused the token (wrong or missing)."""


class NoReply(RemoteError, TimeoutError):
    """No reply within the timeout (no server there, or it is stuck)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One published event: its name, its arguments (JSON), its number."""

    name: str
    args: dict[str, Any]
    seq: int
    host_time_s: float


def connect(
    address: str = DEFAULT_ADDRESS,
    token: str | None = None,
    *,
    token_file: str | Path | None = None,
    timeout_s: float = 5.0,
) -> RemoteRig:
    """Connect to a rig served by ``neurorig serve`` or the GUI.

    ``token``: the one the server printed; without it, ``token_file``, else the
    server's default token file for that port on this machine.
    Raises ``AuthenticationFailed`` for a wrong token, ``NoReply`` when nothing
    answers within ``timeout_s``.
    """
    rig = RemoteRig(address, token, token_file=token_file, timeout_s=timeout_s)
    try:
        rig.info = rig.call("hello")
    except BaseException:
        rig.close()
        raise
    return rig


class RemoteRig:
    """Session-like handle on a remote rig (open it with ``connect``)."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        token_file: str | Path | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.address = address if "://" in address else f"tcp://{address}"
        self.host, port = _host_port(self.address)
        self.token = token if token is not None else _token_from_file(port, token_file)
        if not self.token:
            raise RemoteError("NoToken", "the token is empty: give the server's token")
        self.timeout_s = timeout_s
        self.info: dict[str, Any] = {}
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._sock = _plain_socket(self._ctx, zmq.DEALER, self.token, self.host)
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        )
        self._sock.connect(self.address)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    def __enter__(self) -> RemoteRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets (and every subscription made here)."""
        for sub in list(self._subscriptions):
            sub.close()
        if not self._ctx.closed:
            self._sock.disable_monitor()
            self._ctx.destroy(linger=0)

    # ------------------------------------------------------------ one command

    def call(self, command: str, **args: Any) -> Any:
        """Send ``command`` with ``args``; return its result or raise RemoteError."""
        with self._lock:
            request_id = next(self._ids)
            self._sock.send_multipart([b"", encode_request(request_id, command, args)])
            deadline = time.monotonic() + self.timeout_s
            poller = zmq.Poller()
            poller.register(self._sock, zmq.POLLIN)
            poller.register(self._monitor, zmq.POLLIN)
            while (left_s := deadline - time.monotonic()) > 0:
                ready = dict(poller.poll(int(left_s * 1000) + 1))
                if self._monitor in ready:
                    self._check_handshake()
                if self._sock in ready:
                    reply = json.loads(self._sock.recv_multipart()[-1])
                    if reply.get("id") == request_id:  # else: a late, stale reply
                        return _result(reply)
            raise NoReply(
                "NoReply",
                f"no reply from {self.address} to {command!r} within "
                f"{self.timeout_s:g} s (is `neurorig serve` or the GUI's remote "
                "control running there?)",
            )

    def _check_handshake(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        event = recv_monitor_message(self._monitor)
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            raise AuthenticationFailed(
                "AuthenticationFailed",
                f"{self.address} refused the token (wrong or missing): use the "
                "token `neurorig serve` printed, or its token file",
            )
        raise RemoteError(
            "HandshakeFailed",
            f"{self.address} did not complete the ZeroMQ handshake: not a "
            "neurorig remote server?",
        )

    # ------------------------------------------------------------ like a Session

    def hello(self) -> dict[str, Any]:
        """The server's name, version, commands and event port."""
        return dict(self.call("hello"))

    def status(self) -> dict[str, Any]:
        """The rig's state: phase, armed, emergency latch, recording, counters."""
        return dict(self.call("status"))

    def arm(self) -> None:
        """Arm the board (refused while an emergency stop or a fault holds)."""
        self.call("arm")

    def disarm(self) -> None:
        """Disarm the board."""
        self.call("disarm")

    def stimulate(self, pulse: Any = None, **fields: Any) -> int:
        """Deliver one pulse (a ``StimPulse``, or its fields as keywords:
        ``amplitude_vpp``, ``duration_s``, ``configuration`` ("C0-A1"), ``polarity``,
        ``n_pulses``, ``rate_hz``); return its onset sample. The rig's limits
        are checked there, exactly as for a local pulse."""
        if pulse is not None:
            fields = {
                "amplitude_vpp": pulse.amplitude_vpp,
                "duration_s": pulse.duration_s,
                "configuration": pulse.configuration,
                "polarity": POLARITIES[int(pulse.polarity)],
                "n_pulses": pulse.n_pulses,
                "rate_hz": pulse.rate_hz,
                **fields,
            }
        return int(self.call("stimulate", **fields)["onset_sample"])

    def run_protocol(
        self,
        protocol: str | Path,
        *,
        record: bool = False,
        wait: bool = False,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run a protocol: a file on this machine, or its TOML text.

        The server checks it against the rig's limits before anything is sent.
        ``record``: into a new recording of its own (else into the recording in
        progress, if any). Returns the server's reply (name, n_trials,
        recording); with ``wait``, how the run ended (``experiment_finished``).
        """
        path = Path(protocol) if isinstance(protocol, Path) else None
        if path is None and "\n" not in str(protocol) and Path(protocol).is_file():
            path = Path(protocol)
        text = path.read_text(encoding="utf-8") if path else str(protocol)
        name = path.name if path else "remote.toml"
        if not wait:
            return dict(
                self.call("run_protocol", protocol_toml=text, name=name, record=record)
            )
        with self.subscribe(["experiment_finished"]) as finished:
            self.call("run_protocol", protocol_toml=text, name=name, record=record)
            return finished.next(timeout_s=timeout_s).args

    def cancel(self) -> None:
        """Stop the run at the next trial boundary."""
        self.call("cancel")

    def start_recording(self) -> str:
        """Start a new recording on the rig's machine; return its folder there."""
        return str(self.call("start_recording")["recording"])

    def stop_recording(self) -> dict[str, Any]:
        """Stop the recording: its folder and status (None when none was on)."""
        return dict(self.call("stop_recording"))

    def note(self, text: str) -> bool:
        """Add a note to the recording's events; False when not recording."""
        return bool(self.call("note", text=text)["recorded"])

    def emergency_stop(self) -> None:
        """Disarm now and hold (no arm, no run) until reset."""
        self.call("emergency_stop")

    def reset_fault(self) -> None:
        """Release an emergency stop made remotely, or a fault (stays disarmed);
        refused while an emergency stop pressed at the rig holds."""
        self.call("reset")

    reset = reset_fault

    # ------------------------------------------------------------ events

    def subscribe(
        self,
        names: Iterable[str] | None = None,
        *,
        callback: Callable[[Event], None] | None = None,
    ) -> Subscription:
        """Receive events (``names``, default all) from now on.

        Returns once the subscription is live (no event after this call is
        missed, unless the subscriber falls behind: ``Subscription.lost``).
        With ``callback``, a thread calls it with each event; else iterate,
        or call ``next(timeout_s)``.
        """
        endpoint = _access.zmq_endpoint(self.host, int(self.info["events_port"]))
        sub = Subscription(self, endpoint, names, callback)
        self._subscriptions.append(sub)
        return sub


class Subscription:
    """Events from the server: ``next(timeout_s)``, iteration, or a callback."""

    def __init__(
        self,
        rig: RemoteRig,
        endpoint: str,
        names: Iterable[str] | None,
        callback: Callable[[Event], None] | None,
    ) -> None:
        self._rig = rig
        self.names = None if names is None else set(names)
        self.lost = 0  # events published but not received (seq gaps)
        self._last_seq: int | None = None
        self._sock = _plain_socket(rig._ctx, zmq.SUB, rig.token, rig.host)
        topics = [""] if self.names is None else [*self.names, "events_ping"]
        for topic in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(endpoint)
        self._sync()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if callback is not None:
            self._thread = threading.Thread(
                target=self._deliver,
                args=(callback,),
                name="remote-events",
                daemon=True,
            )
            self._thread.start()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        while True:
            yield self.next()

    def close(self) -> None:
        """Stop receiving (and the callback's thread)."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        if not self._sock.closed:
            self._sock.close(linger=0)
        if self in self._rig._subscriptions:
            self._rig._subscriptions.remove(self)

    def next(self, timeout_s: float | None = None) -> Event:
        """The next event; raises TimeoutError after ``timeout_s`` (None: wait)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left_ms = None if deadline is None else (deadline - time.monotonic()) * 1000
            if left_ms is not None and left_ms <= 0:
                raise TimeoutError(f"no event within {timeout_s:g} s")
            event = self._receive(left_ms)
            if event is not None and event.name != "events_ping":
                return event

    def wait_for(
        self,
        name: str,
        predicate: Callable[[Event], bool] | None = None,
        timeout_s: float = 10.0,
    ) -> Event:
        """The next event called ``name`` (for which ``predicate`` holds)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise TimeoutError(f"no {name} event within {timeout_s:g} s")
            event = self.next(left_s)
            if event.name == name and (predicate is None or predicate(event)):
                return event

    def _receive(self, timeout_ms: float | None) -> Event | None:
        if not self._sock.poll(None if timeout_ms is None else max(1, int(timeout_ms))):
            return None
        _, body = self._sock.recv_multipart()
        record = json.loads(body)
        event = Event(
            record["event"], record["args"], record["seq"], record["host_time_s"]
        )
        # Gaps count only among the events this subscription receives all of.
        if self.names is None and self._last_seq is not None:
            self.lost += max(0, event.seq - self._last_seq - 1)
        self._last_seq = event.seq
        return event

    def _sync(self) -> None:
        """Ping through the server until our own ping comes back: then the
        subscription is live (a new ZeroMQ subscriber joins asynchronously)."""
        deadline = time.monotonic() + self._rig.timeout_s
        while time.monotonic() < deadline:
            nonce = uuid.uuid4().hex
            self._rig.call("ping_events", nonce=nonce)
            until = time.monotonic() + 0.2
            while (left_ms := (until - time.monotonic()) * 1000) > 0:
                event = self._receive(left_ms)
                if event is not None and event.args.get("nonce") == nonce:
                    self._last_seq = None
                    return
        self._sock.close(linger=0)
        raise NoReply("NoReply", "the event subscription did not come up")

    def _deliver(self, callback: Callable[[Event], None]) -> None:
        while not self._closed.is_set():
            try:
                event = self._receive(100)
            except zmq.ZMQError:
                return  # closed
            if event is not None and event.name != "events_ping":
                try:
                    callback(event)
                except Exception:  # one bad callback must not end the events
                    log.exception("remote: an event callback failed")


# ------------------------------------------------------------------ helpers


def _plain_socket(
    ctx: zmq.Context[Any], kind: int, token: str, host: str
) -> zmq.Socket[Any]:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.ipv6 = ":" in host
    sock.plain_username = _access.USERNAME
    sock.plain_password = token.encode("utf-8")
    return sock


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def _token_from_file(port: int, token_file: str | Path | None) -> str:
    path = Path(token_file) if token_file else _access.default_token_file(port)
    try:
        return _access.read_token_file(path)
    except OSError:
        raise RemoteError(
            "NoToken",
            f"no token given and none readable in {path}: pass token= (printed "
            "by `neurorig serve`) or token_file=",
        ) from None


def _result(reply: dict[str, Any]) -> Any:
    if reply.get("ok"):
        return reply.get("result")
    error = reply.get("error") or {}
    raise RemoteError(
        str(error.get("type", "Error")),
        str(error.get("message", "refused")),
        error.get("field"),
    )
