"""The stimulus parameter space a closed-loop search explores, and its objective."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from firmware_bridge.stimulus import Polarity, StimPulse, parse_configuration


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
            # (amplitude, duration, pair) or a SitePoint (configuration first)
            a, d = point[1:3] if isinstance(point[0], str) else point[:2]
            charge_uc = (a / 2.0) / self.load_ohm * d / math.pi * 1e6
            value = value / charge_uc
        return float(value)


# ---------------------------------------------------------------- mixed spaces

MAX_ELECTRODES = 16
POLARITY_NAMES = ("positive_first", "negative_first")


@dataclass(frozen=True, slots=True, order=True)
class Configuration:
    """Which electrodes a pulse uses: a cathode and an anode (``None``: the
    common return). Written ``"C3-A4"`` (cathode 3, anode 4) or ``"C3-R"``.

    >>> Configuration.parse("C3-A4"), str(Configuration(5, None))
    (Configuration(cathode=3, anode=4), 'C5-R')
    """

    cathode: int
    anode: int | None = None

    @classmethod
    def parse(cls, text: str) -> Configuration:
        """From the text form; ValueError naming what is allowed otherwise."""
        cathode, anode = parse_configuration(text)
        return cls(cathode, anode)

    def __str__(self) -> str:
        return f"C{self.cathode}-" + ("R" if self.anode is None else f"A{self.anode}")

    def electrodes(self) -> tuple[int, ...]:
        """The board electrodes it uses (the common return is not one)."""
        return (self.cathode,) if self.anode is None else (self.cathode, self.anode)


class SitePoint(NamedTuple):
    """One stimulus of a mixed space (a plain tuple in JSON: ``list(point)``)."""

    configuration: str  # "C3-A4" / "C3-R"
    amplitude_vpp: float
    duration_s: float
    n_pulses: int = 1
    rate_hz: float = 1.0
    polarity: int = 0  # Polarity: 0 positive first, 1 negative first


# Columns of the feature matrix the kernel works on (MixedSpace.features).
FEATURE_UNIT = slice(0, 4)  # amplitude, duration, pulses, rate: unit interval
FEATURE_SITE, FEATURE_ANODE, FEATURE_POLARITY = 4, 5, 6
RETURN_CODE = 0.0  # FEATURE_ANODE of the common return (an anode offset is never 0)


@dataclass(frozen=True, slots=True)
class MixedSpace:
    """A mixed stimulus space: electrode configuration (categorical, placed by
    its site), amplitude and duration (continuous), pulses per train and train
    rate (ordinal: the values listed), polarity (categorical).

    The stimulation *site* is the cathode's position (spikes start under it),
    from ``electrode_positions_m`` (the rig file's
    ``[stimulator] electrode_positions_mm``); the anode enters the kernel as
    its offset from the cathode in electrodes, or the common return.

    >>> space = MixedSpace(configurations=("C0-R", "C1-R", "C1-A2"),
    ...                    electrode_positions_m=(0.01, 0.03, 0.05))
    >>> space.site_m("C1-A2")
    0.03
    >>> space.contains(SitePoint("C1-A2", 4.0, 3e-3))
    True
    >>> space.contains(SitePoint("C2-R", 4.0, 3e-3))
    False
    >>> len(space.grid(6, 6))
    108
    """

    configurations: tuple[str, ...] = ("C0-A1",)
    electrode_positions_m: tuple[float, ...] = (0.004, 0.012)
    amplitude_vpp: tuple[float, float] = (2.0, 6.0)
    duration_s: tuple[float, float] = (2e-3, 6.7e-3)
    n_pulses: tuple[int, ...] = (1,)
    rate_hz: tuple[float, ...] = (1.0,)
    polarities: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        for name in ("amplitude_vpp", "duration_s"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(
                    f"{name} bounds must satisfy 0 < low < high, got {low, high}"
                )
        n = len(self.electrode_positions_m)
        if not 1 <= n <= MAX_ELECTRODES:
            raise ValueError(
                f"electrode_positions_m has {n} electrodes; allowed 1–{MAX_ELECTRODES}"
            )
        if list(self.electrode_positions_m) != sorted(set(self.electrode_positions_m)):
            raise ValueError(
                "electrode_positions_m must be strictly ascending (from the head)"
            )
        if not self.configurations:
            raise ValueError("configurations must name at least one, e.g. 'C0-R'")
        if len(set(self.configurations)) != len(self.configurations):
            raise ValueError("configurations lists one twice")
        for text in self.configurations:
            config = Configuration.parse(text)
            if str(config) != text:
                raise ValueError(f"configuration {text!r}: write it {str(config)!r}")
            if max(config.electrodes()) >= n:
                raise ValueError(
                    f"configuration {text!r} names an electrode beyond the "
                    f"{n} the stimulator has (0–{n - 1})"
                )
        for name, low in (("n_pulses", 1), ("rate_hz", 0)):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)) or values[0] < low:
                raise ValueError(
                    f"{name} must list ascending distinct values ≥ {low}, got {values}"
                )
        if not self.polarities or not set(self.polarities) <= {0, 1}:
            raise ValueError(
                f"polarities must list 0 (positive first) and/or 1, got {self.polarities}"
            )

    # ------------------------------------------------------------ points

    def point(self, *values) -> SitePoint:
        """A SitePoint from its fields (a recorded JSON list), typed."""
        c, a, d, n, r, p = (list(values) + [1, 1.0, 0][len(values) - 3 :])[:6]
        return SitePoint(str(c), float(a), float(d), int(n), float(r), int(p))

    def site_m(self, configuration: str) -> float:
        """The stimulation site (the cathode's position), metres."""
        cathode = Configuration.parse(configuration).cathode
        return float(self.electrode_positions_m[cathode])

    def contains(self, *point) -> bool:
        """True when the point is a stimulus of this space (with float tolerance)."""
        if len(point) == 1 and isinstance(point[0], tuple):
            point = point[0]
        c, a, d, n, r, p = self.point(*point)
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        eps = 1e-9
        return (
            c in self.configurations
            and a0 - eps <= a <= a1 + eps
            and d0 - eps <= d <= d1 + eps
            and n in self.n_pulses
            and any(abs(r - v) <= eps * max(1.0, v) for v in self.rate_hz)
            and p in self.polarities
        )

    def gentlest(self, configuration: str) -> SitePoint:
        """The configuration's gentlest stimulus: the safe set's seed."""
        return SitePoint(
            configuration,
            self.amplitude_vpp[0],
            self.duration_s[0],
            self.n_pulses[0],
            self.rate_hz[0],
            self.polarities[0],
        )

    def grid(self, n_amplitude: int, n_duration: int) -> list[SitePoint]:
        """Every grid point: amplitude fastest, then duration, pulses, rate,
        polarity, configuration."""
        amps = np.linspace(*self.amplitude_vpp, n_amplitude)
        durs = np.linspace(*self.duration_s, n_duration)
        return [
            SitePoint(c, float(a), float(d), int(n), float(r), int(p))
            for c in self.configurations
            for p in self.polarities
            for r in self.rate_hz
            for n in self.n_pulses
            for d in durs
            for a in amps
        ]

    def random_point(self, rng: np.random.Generator) -> SitePoint:
        """A point drawn uniformly (continuous axes) and at random (the others)."""
        u, v = rng.random(2)
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        return SitePoint(
            self.configurations[int(rng.integers(len(self.configurations)))],
            a0 + u * (a1 - a0),
            d0 + v * (d1 - d0),
            self.n_pulses[int(rng.integers(len(self.n_pulses)))],
            self.rate_hz[int(rng.integers(len(self.rate_hz)))],
            self.polarities[int(rng.integers(len(self.polarities)))],
        )

    def pulse(self, point) -> StimPulse:
        """The stimulus command for a point."""
        c, a, d, n, r, p = self.point(*point)
        return configured_pulse(Configuration.parse(c), a, d, n, r, p)

    def charge_per_phase_uc(self, point, load_ohm: float = 1000.0) -> float:
        """Charge per phase of one pulse into ``load_ohm``, µC."""
        _, a, d, *_ = self.point(*point)
        return (a / 2.0) / load_ohm * d / math.pi * 1e6

    def describe(self, point) -> str:
        """One line: ``C3-R 4 Vpp × 3 ms`` (and the train, polarity if varied)."""
        c, a, d, n, r, p = self.point(*point)
        text = f"{c} {a:.3g} Vpp × {d * 1e3:.3g} ms"
        if n > 1:
            text += f" × {n} at {r:g} Hz"
        if len(self.polarities) > 1:
            text += f", {POLARITY_NAMES[p].replace('_', ' ')}"
        return text

    # ------------------------------------------------------------ for the kernel

    def features(self, points) -> np.ndarray:
        """(n, 7) features: amplitude, duration, pulses, rate on [0, 1] (the
        ordinals by rank), site (m), anode offset in electrodes (0 = common
        return), polarity."""
        out = np.empty((len(points), 7))
        (a0, a1), (d0, d1) = self.amplitude_vpp, self.duration_s
        codes = {c: _anode_code(c) for c in self.configurations}
        for i, point in enumerate(points):
            c, a, d, n, r, p = self.point(*point)
            out[i] = (
                (a - a0) / (a1 - a0),
                (d - d0) / (d1 - d0),
                _rank(self.n_pulses, n),
                _rank(self.rate_hz, r),
                self.site_m(c),
                codes[c],
                p,
            )
        return out

    def varied(self) -> np.ndarray:
        """Which of the 7 feature columns vary in this space (bool)."""
        sites = {self.site_m(c) for c in self.configurations}
        anodes = {_anode_code(c) for c in self.configurations}
        return np.array([
            True, True, len(self.n_pulses) > 1, len(self.rate_hz) > 1,
            len(sites) > 1, len(anodes) > 1, len(self.polarities) > 1,
        ])  # fmt: skip

    def candidates(self, resolution: int) -> list[SitePoint]:
        """The fixed candidate set a search chooses from: ``resolution`` steps
        on amplitude and duration, every value of the other axes."""
        return self.grid(resolution, resolution)


def _anode_code(configuration: str) -> float:
    config = Configuration.parse(configuration)
    return RETURN_CODE if config.anode is None else float(config.anode - config.cathode)


def _rank(values: tuple, value) -> float:
    if len(values) == 1:
        return 0.0
    i = int(np.argmin([abs(v - value) for v in values]))
    return i / (len(values) - 1)


def configured_pulse(
    config: Configuration,
    amplitude_vpp: float,
    duration_s: float,
    n_pulses: int = 1,
    rate_hz: float = 1.0,
    polarity: int = 0,
) -> StimPulse:
    """The StimPulse for a configuration."""
    return StimPulse(
        amplitude_vpp=amplitude_vpp,
        duration_s=duration_s,
        polarity=Polarity(polarity),
        n_pulses=n_pulses,
        rate_hz=rate_hz,
        cathode=config.cathode,
        anode=config.anode,
    )
