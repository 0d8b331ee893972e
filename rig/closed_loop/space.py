"""The stimulus parameter space a closed-loop search explores, and its objective."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.stimulus import StimPulse


@dataclass(frozen=True, slots=True)
class ParameterSpace:
    """Amplitude × duration (× electrode pair) box, inside the rig's safety limits.

    Points are ``(amplitude_vpp, duration_s, pair)``; the search works on the
    unit square of (amplitude, duration) per pair.

    >>> space = ParameterSpace(amplitude_vpp=(2.0, 6.0), duration_s=(2e-3, 6.7e-3))
    >>> space.from_unit(0.5, 0.0)
    (4.0, 0.002)
    >>> space.contains(7.0, 3e-3, pair=0)
    False
    """

    amplitude_vpp: tuple[float, float] = (2.0, 6.0)
    duration_s: tuple[float, float] = (2e-3, 6.7e-3)
    pairs: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        for name in ("amplitude_vpp", "duration_s"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(
                    f"{name} bounds must satisfy 0 < low < high, got {low, high}"
                )
        if not self.pairs:
            raise ValueError("pairs must name at least one electrode pair")

    def to_unit(self, amplitude_vpp: float, duration_s: float) -> tuple[float, float]:
        """Map a point to the unit square."""
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        return (amplitude_vpp - a0) / (a1 - a0), (duration_s - d0) / (d1 - d0)

    def from_unit(self, u: float, v: float) -> tuple[float, float]:
        """Map a unit-square point back to (amplitude_vpp, duration_s)."""
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        return a0 + u * (a1 - a0), d0 + v * (d1 - d0)

    def grid(self, n_amplitude: int, n_duration: int) -> list[tuple[float, float, int]]:
        """Every grid point, amplitude fastest, for each pair."""
        amps = np.linspace(*self.amplitude_vpp, n_amplitude)
        durs = np.linspace(*self.duration_s, n_duration)
        return [(float(a), float(d), p) for p in self.pairs for d in durs for a in amps]

    def contains(self, amplitude_vpp: float, duration_s: float, pair: int) -> bool:
        """True when the point lies inside the box (with float tolerance)."""
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        eps = 1e-9
        return (
            a0 - eps <= amplitude_vpp <= a1 + eps
            and d0 - eps <= duration_s <= d1 + eps
            and pair in self.pairs
        )

    @staticmethod
    def pulse(point: tuple[float, float, int]) -> StimPulse:
        """The single pulse for a point."""
        amplitude, duration, pair = point
        # A pair index is the electrodes 2k, 2k + 1 (pair 0: the classic C0-A1).
        return StimPulse(
            amplitude_vpp=amplitude,
            duration_s=duration,
            cathode=2 * pair,
            anode=2 * pair + 1,
        )


@dataclass(frozen=True, slots=True)
class Objective:
    """What the search optimises, from one stimulus's measured response.

    ``kind = "maximise"``: the response itself. ``kind = "target"``: closeness to
    ``target`` (score ``-|response - target|``). ``per_charge = True`` divides
    the score by the charge per phase (µC, into ``load_ohm``), to find the most
    efficient stimulus rather than the strongest.

    >>> efficiency = Objective(measure="amplitude_uv_mean", per_charge=True)
    >>> round(efficiency.score(95.5, (4.0, 3e-3, 0)), 1)  # 95.5 µV / 1.91 µC
    50.0
    >>> Objective(kind="target", target=40.0).score(35.0, (4.0, 3e-3, 0))
    -5.0
    """

    measure: str = "peak_displacement_mm"
    kind: str = "maximise"
    target: float | None = None
    per_charge: bool = False
    load_ohm: float = 1000.0
    allowed_kinds: tuple[str, ...] = field(default=("maximise", "target"), repr=False)

    def __post_init__(self) -> None:
        if self.kind not in self.allowed_kinds:
            raise ValueError(
                f"objective kind {self.kind!r} is not one of {list(self.allowed_kinds)}"
            )
        if self.kind == "target" and (self.target is None or math.isnan(self.target)):
            raise ValueError("objective kind 'target' needs a numeric target")

    def score(self, response: float, point: tuple[float, float, int]) -> float:
        """Higher is better."""
        if self.kind == "maximise":
            value = response
        else:
            assert self.target is not None  # __post_init__ checks it for "target"
            value = -abs(response - self.target)
        if self.per_charge:
            charge_uc = (
                ParameterSpace.pulse(point).charge_per_phase_c(self.load_ohm) * 1e6
            )
            value = value / charge_uc
        return float(value)
