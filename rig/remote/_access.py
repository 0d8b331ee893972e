"""Who may talk to the remote API: the bind address, the token, the ZAP check.

Loopback only unless asked: ``parse_bind`` refuses any address outside
127.0.0.0/8 and ::1 unless ``allow_remote``. A token, made fresh for each
server, is written to a file only its owner can read (0600) and checked by
ZeroMQ's authentication protocol (ZAP, RFC 27) on every connection, commands
and events alike, with a constant-time comparison. A connection without it
never reaches the server's code.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PORT = 5555
ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by RFC 27
ZAP_DOMAIN = b"neurorig"
USERNAME = b"neurorig"  # PLAIN needs a user name; only the token is checked


class BindRefused(ValueError):
    """An address the server will not listen on (names it and what is allowed)."""


def parse_bind(text: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``, or ``[::1]:PORT``) as (ip, port), refusing a
    non-loopback host unless ``allow_remote``.

    >>> parse_bind("127.0.0.1:5555")
    ('127.0.0.1', 5555)
    >>> parse_bind("localhost:0")
    ('127.0.0.1', 0)
    >>> parse_bind("0.0.0.0:5555")
    Traceback (most recent call last):
    ...
    rig.remote._access.BindRefused: --bind 0.0.0.0:5555 is not a loopback address; \
allowed: 127.0.0.0/8 or ::1, or give --allow-remote to listen beyond this machine
    """
    host, _, port_text = text.rpartition(":")
    if not host:
        host = "127.0.0.1"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        host = "127.0.0.1"
    if host == "*":
        host = "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise BindRefused(
            f"--bind {text}: port {port_text!r} is not a whole number; allowed "
            "HOST:PORT with PORT 0–65535 (0: any free port)"
        ) from None
    if not 0 <= port <= 65535:
        raise BindRefused(f"--bind {text}: port {port} is outside 0–65535")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BindRefused(
            f"--bind {text}: {host!r} is not an IP address; allowed: an IP "
            "address (127.0.0.1, ::1) or localhost"
        ) from None
    if not address.is_loopback and not allow_remote:
        raise BindRefused(
            f"--bind {text} is not a loopback address; allowed: 127.0.0.0/8 or "
            "::1, or give --allow-remote to listen beyond this machine"
        )
    return str(address), port


def zmq_endpoint(host: str, port: int) -> str:
    """``tcp://`` endpoint for a host and port (IPv6 in brackets)."""
    if ":" in host:
        return f"tcp://[{host}]:{port}"
    return f"tcp://{host}:{port}"


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def token_folder() -> Path:
    """Where token files go: ``$XDG_RUNTIME_DIR/neurorig`` (a per-user tmpfs),
    else ``~/.local/state/neurorig``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "neurorig"
    return Path.home() / ".local" / "state" / "neurorig"


def default_token_file(port: int) -> Path:
    """The token file of a server listening for commands on ``port``."""
    return token_folder() / f"remote-{port}.token"


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only (0600), even if
    the file was there before with wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)


def read_token_file(path: Path) -> str:
    """The token in ``path`` (one line)."""
    return path.read_text(encoding="ascii").strip()


class TokenCheck:
    """Answers ZAP requests: PLAIN with the right password passes, all else fails."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("ascii")
        self.refused = 0  # connections refused since the server started

    def reply(self, frames: list[bytes]) -> list[bytes]:
        """The ZAP reply to one request's frames (RFC 27)."""
        if len(frames) < 6:  # not a ZAP request: nothing to answer but a refusal
            return [b"1.0", b"", b"500", b"malformed ZAP request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism = frames[:6]
        credentials = frames[6:]
        ok = (
            mechanism == b"PLAIN"
            and len(credentials) == 2
            and hmac.compare_digest(credentials[1], self._token)
        )
        if ok:
            return [version, request_id, b"200", b"OK", USERNAME, b""]
        self.refused += 1
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
            who = address.decode("ascii", "replace")
            log.warning(
                "remote: refused a connection from %s (%s, no valid token); "
                "%d refused so far",
                who,
                mechanism.decode("ascii", "replace"),
                self.refused,
            )
        return [version, request_id, b"400", b"wrong or missing token", b"", b""]
