"""The remote API: a running rig driven and watched from another process.

``rig.remote.connect(address, token=...)`` (the client) is light: pyzmq and
JSON. ``RemoteServer`` (hosted by the GUI and by ``neurorig serve``) wraps a
started Session. Message shapes and the reasons behind them: docs/remote.md.
"""

from typing import Any

from rig.remote.client import (
    AuthenticationFailed,
    Event,
    NoReply,
    RemoteError,
    RemoteRig,
    Subscription,
    connect,
)

__all__ = [
    "AuthenticationFailed",
    "Event",
    "NoReply",
    "RemoteError",
    "RemoteRig",
    "RemoteServer",
    "Subscription",
    "connect",
]


def __getattr__(name: str) -> Any:
    # Lazy: a notebook's client must not load the rig's core (numba, OpenCV).
    if name == "RemoteServer":
        from rig.remote.server import RemoteServer

        return RemoteServer
    raise AttributeError(f"module 'rig.remote' has no attribute {name!r}")
