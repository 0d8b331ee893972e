"""Opening serial ports: pyserial for hardware and the simulated rig alike.

``open_port(url)`` takes a device path (``/dev/ttyACM0``, ``COM5``, a pty path) or a
pyserial URL. ``sim://?seed=3&channels=4`` starts a simulated rig on a fresh
pseudo-terminal and opens its port, so hardware and simulator take the same code
path. Network URLs (``socket://``, ``rfc2217://``) are refused unless explicitly
allowed: a stimulator must not be driven across a network by accident.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import serial
from serial.tools import list_ports

NETWORK_SCHEMES = ("socket", "rfc2217", "spy", "loop", "alt", "hwgrep", "cp2110")


class PortInUseError(OSError):
    """The serial port is open in another session; nothing was sent to it."""


@dataclass(frozen=True, slots=True)
class PortInfo:
    """One serial port the OS reports."""

    device: str
    description: str
    hwid: str


def list_serial_ports() -> list[PortInfo]:
    """Serial ports on this machine (``serial.tools.list_ports``), sorted by path."""
    ports = [
        PortInfo(p.device, p.description or "", p.hwid or "")
        for p in list_ports.comports()
    ]
    return sorted(ports, key=lambda p: p.device)


def parse_sim_url(url: str) -> dict[str, str]:
    """Options of a ``sim://?key=value&...`` URL as a flat dict of strings.

    >>> parse_sim_url("sim://?seed=3&channels=4&rate=30000")
    {'seed': '3', 'channels': '4', 'rate': '30000'}
    """
    query = parse_qs(urlparse(url).query)
    return {key: values[-1] for key, values in query.items()}


def open_port(
    url: str, *, timeout_s: float = 0.05, allow_network: bool = False
) -> serial.Serial:
    """Open ``url`` with pyserial and return the port.

    Parameters
    ----------
    url
        A device path or a pyserial URL. ``sim://`` URLs are opened by
        ``rig.open_rig``, which starts the simulator first.
    timeout_s
        Read timeout; short, so the reader thread notices a stop request quickly.
    allow_network
        Allow ``socket://`` and ``rfc2217://`` URLs (tests only).

    The port is opened exclusively: ``PortInUseError`` if another session has it.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in NETWORK_SCHEMES and not allow_network:
        raise ValueError(
            f"refusing port URL {url!r}: network and virtual ports ({scheme}://) are "
            "not allowed for a stimulator; use a local serial device path"
        )
    if scheme == "sim":
        raise ValueError(
            f"{url}: the simulated rig is opened by rig.open_rig (or --sim), "
            "which starts it and opens its port"
        )
    try:
        # exclusive: a second program (or a second Device.open) on the same port
        # is refused here instead of interleaving its bytes with this session's
        # and breaking its link (POSIX flock; Windows ports are always exclusive).
        port = serial.serial_for_url(
            url, timeout=timeout_s, write_timeout=1.0, exclusive=True
        )
    except serial.SerialException as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            raise PortInUseError(
                f"serial port {url!r} is already in use by another program or "
                "session: close that one first (one session per board)"
            ) from None
        raise FileNotFoundError(
            f"cannot open serial port {url!r}: {exc}. Ports seen: "
            f"{[p.device for p in list_serial_ports()] or 'none'}"
        ) from exc
    return port
