"""The live system: headless session, recording, protocols, CLI; rig.gui on top.

``rig.open_rig(url, ...)`` is the one way to open a rig (a board's serial port
or ``sim://``): see ``rig.core.connect``.
"""

from typing import Any

__all__ = ["open_rig"]


def __getattr__(name: str) -> Any:
    # Lazy: ``import rig`` (every CLI start) must not pay for numba and OpenCV.
    if name == "open_rig":
        from rig.core.connect import open_rig

        return open_rig
    raise AttributeError(f"module 'rig' has no attribute {name!r}")
