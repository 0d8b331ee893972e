"""The free-space guard: stop a recording cleanly before its disk is full.

The reserve is ``reserve_s`` seconds of recording at the measured data rate
(samples, events, frame tables and the video file's growth, over windows of
``WINDOW_S``; never less than the nominal rate: the samples', plus, from the
first frame, the video's at its storage's measured bytes per pixel), and never less than
``floor_bytes``. Below it the writer stops with a ``DiskFullError`` saying how
much was free and at what rate it was filling, while there is still room to
finish every file properly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rig.recording._files import free_bytes

WINDOW_S = 2.0  # the video grows in 256 KiB steps: measure over seconds


@dataclass(frozen=True, slots=True)
class SpaceCheck:
    """One look at the disk."""

    free_bytes: int
    rate_bytes_per_s: float
    reserve_bytes: float

    @property
    def low(self) -> bool:
        """Less free than the reserve."""
        return self.free_bytes < self.reserve_bytes

    def describe(self) -> str:
        """What was free, what was needed and why."""
        return (
            f"{_mb(self.free_bytes)} free, below the reserve of "
            f"{_mb(self.reserve_bytes)} ({self.rate_bytes_per_s / 1e6:.3g} MB/s "
            "measured)"
        )


class SpaceGuard:
    """Measures the data rate and compares free space with the reserve."""

    def __init__(
        self,
        folder: Path,
        *,
        nominal_bytes_per_s: float,
        reserve_s: float,
        floor_bytes: int,
    ) -> None:
        self.folder = folder
        self.nominal = float(nominal_bytes_per_s)
        self.reserve_s = float(reserve_s)
        self.floor_bytes = int(floor_bytes)
        self.rate = self.nominal
        self._window_start = time.monotonic()
        self._window_bytes: int | None = None

    def expect(self, bytes_per_s: float) -> None:
        """Another stream starts (the video, at its storage's measured rate):
        the prior rate grows by it at once."""
        self.nominal += float(bytes_per_s)
        self.rate = max(self.rate, self.nominal)

    @property
    def enabled(self) -> bool:
        """Off when both the reserve and the floor are 0."""
        return self.reserve_s > 0 or self.floor_bytes > 0

    def check(self, total_bytes: int) -> SpaceCheck:
        """Update the rate from ``total_bytes`` written so far; look at the disk."""
        now = time.monotonic()
        if self._window_bytes is None:
            self._window_start, self._window_bytes = now, total_bytes
        elif now - self._window_start >= WINDOW_S:
            measured = (total_bytes - self._window_bytes) / (now - self._window_start)
            self.rate = max(self.nominal, measured)
            self._window_start, self._window_bytes = now, total_bytes
        reserve = max(float(self.floor_bytes), self.reserve_s * self.rate)
        return SpaceCheck(free_bytes(self.folder), self.rate, reserve)

    def describe_settings(self) -> str:
        """The reserve's rule, for messages."""
        return f"{self.reserve_s:g} s of recording, at least {_mb(self.floor_bytes)}"


def _mb(n: float) -> str:
    return f"{n / 1e6:.3g} MB"
