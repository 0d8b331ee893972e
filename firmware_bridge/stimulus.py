"""The stimulus the board delivers: one bipolar sinusoidal pulse, or a train of them.

A pulse is one full sine cycle of ``duration_s`` seconds across a configuration of
the board's stimulation electrodes: a cathode and an anode (another electrode, or the
common return). The first half-cycle has the sign given by ``polarity``, the second
half-cycle the opposite sign, so each pulse is charge-balanced. ``amplitude_vpp`` is
the peak-to-peak voltage across the configuration (2–6 V on the earthworm rig).

A configuration is written ``"C3-A4"`` (cathode 3, anode 4) or ``"C3-R"`` (cathode 3
against the common return); electrodes are numbered 0..N−1 from the head.

All fields are SI units; the wire encoding (mV, µs) is in ``firmware_bridge.protocol``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import IntEnum

MAX_STIM_ELECTRODES = 16  # the wire's and the simulated board's largest array
COMMON_RETURN = None  # ``anode`` of a configuration against the common return
_CONFIGURATION = re.compile(r"C(\d{1,2})-(?:A(\d{1,2})|R)")


def parse_configuration(text: str) -> tuple[int, int | None]:
    """``"C3-A4"`` → ``(3, 4)``; ``"C3-R"`` → ``(3, None)`` (the common return).

    >>> parse_configuration("C0-A1"), parse_configuration("c5-r")
    ((0, 1), (5, None))

    Raises ValueError naming what is allowed (the indices' range is the board's
    business: ``check_configuration``).
    """
    match = _CONFIGURATION.fullmatch(str(text).strip().upper())
    if match is None:
        raise ValueError(
            f"configuration {text!r}: allowed \"C<cathode>-A<anode>\" (e.g. \"C0-A1\") "
            "or \"C<cathode>-R\" (against the common return)"
        )
    cathode = int(match.group(1))
    anode = None if match.group(2) is None else int(match.group(2))
    if anode == cathode:
        raise ValueError(
            f"configuration {text!r}: the anode must be another electrode than "
            "the cathode"
        )
    return cathode, anode


def format_configuration(cathode: int, anode: int | None) -> str:
    """``(3, 4)`` → ``"C3-A4"``; ``(3, None)`` → ``"C3-R"``."""
    return f"C{cathode}-R" if anode is None else f"C{cathode}-A{anode}"


def check_configuration(cathode: int, anode: int | None, n_electrodes: int) -> None:
    """Raise ValueError (one line, the field and what is allowed) unless the
    configuration is possible on ``n_electrodes`` electrodes."""
    top = n_electrodes - 1
    if not 0 <= cathode <= top:
        raise ValueError(f"cathode = {cathode}: allowed electrodes 0–{top}")
    if anode is not None:
        if not 0 <= anode <= top:
            raise ValueError(
                f"anode = {anode}: allowed electrodes 0–{top} or the common return"
            )
        if anode == cathode:
            raise ValueError(
                f"anode = {anode}: allowed an electrode other than the cathode "
                f"({cathode}), or the common return"
            )


def all_configurations(n_electrodes: int, *, common_return: bool = True) -> list[str]:
    """Every configuration of ``n_electrodes`` electrodes, cathode by cathode.

    >>> all_configurations(3)
    ['C0-A1', 'C0-A2', 'C0-R', 'C1-A0', 'C1-A2', 'C1-R', 'C2-A0', 'C2-A1', 'C2-R']
    """
    out = []
    for c in range(n_electrodes):
        out += [format_configuration(c, a) for a in range(n_electrodes) if a != c]
        if common_return:
            out.append(format_configuration(c, None))
    return out


class Polarity(IntEnum):
    """Sign of the first half-cycle of the bipolar pulse."""

    POSITIVE_FIRST = 0  # the cathode goes positive first
    NEGATIVE_FIRST = 1


@dataclass(frozen=True, slots=True)
class StimPulse:
    """Parameters of one stimulus command (a single pulse or a train).

    Parameters
    ----------
    amplitude_vpp
        Peak-to-peak voltage across the configuration, volts.
    duration_s
        Length of one pulse (one full sine cycle), seconds.
    cathode
        Index of the cathode electrode (0-based, from the head): the site.
    anode
        Index of the anode electrode, another than the cathode; None = the
        common return. The default (0, 1) is the classic pair under the head.
    polarity
        Sign of the first half-cycle.
    n_pulses
        Pulses in the train; 1 for a single pulse.
    rate_hz
        Pulse repetition rate within a train, Hz. Ignored when ``n_pulses == 1``.
    """

    amplitude_vpp: float
    duration_s: float
    cathode: int = 0
    anode: int | None = 1
    polarity: Polarity = Polarity.POSITIVE_FIRST
    n_pulses: int = 1
    rate_hz: float = 1.0

    @property
    def configuration(self) -> str:
        """The configuration as text: ``"C0-A1"``, ``"C3-R"``.

        >>> StimPulse(4.0, 3e-3, cathode=3, anode=None).configuration
        'C3-R'
        """
        return format_configuration(self.cathode, self.anode)

    def electrodes(self) -> tuple[int, ...]:
        """The array's electrodes the current flows through (not the common
        return): each carries the full charge of every phase.

        >>> StimPulse(4.0, 3e-3, cathode=2, anode=5).electrodes()
        (2, 5)
        """
        return (self.cathode,) if self.anode is None else (self.cathode, self.anode)

    def charge_per_phase_c(self, load_ohm: float) -> float:
        """Charge delivered in one half-cycle into a resistive load, coulombs.

        For ``v(t) = (Vpp/2)·sin(2πt/T)`` into ``R``, one half-cycle carries
        ``∫ i dt = (Vpp/2R)·T/π``.

        >>> pulse = StimPulse(amplitude_vpp=4.0, duration_s=3e-3)
        >>> round(pulse.charge_per_phase_c(load_ohm=1000.0) * 1e6, 3)  # µC
        1.91
        """
        return (self.amplitude_vpp / 2.0) / load_ohm * self.duration_s / math.pi

    def on_time_s(self) -> float:
        """Total time the stimulator output is active for this command, seconds."""
        return self.duration_s * self.n_pulses

    def train_length_s(self) -> float:
        """Time from the first pulse's onset to the end of the last pulse, seconds.

        >>> StimPulse(4.0, 3e-3, n_pulses=5, rate_hz=50.0).train_length_s()
        0.083
        """
        if self.n_pulses <= 1:
            return self.duration_s
        return (self.n_pulses - 1) / self.rate_hz + self.duration_s
