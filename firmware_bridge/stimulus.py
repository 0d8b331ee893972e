"""The stimulus the board delivers: one bipolar sinusoidal pulse, or a train of them.

A pulse is one full sine cycle of ``duration_s`` seconds across the stimulation
electrode pair: the first half-cycle has the sign given by ``polarity``, the second
half-cycle the opposite sign, so each pulse is charge-balanced. ``amplitude_vpp`` is
the peak-to-peak voltage across the pair (2–6 V on the earthworm rig).

All fields are SI units; the wire encoding (mV, µs) is in ``firmware_bridge.protocol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum


class Polarity(IntEnum):
    """Sign of the first half-cycle of the bipolar pulse."""

    POSITIVE_FIRST = 0  # the first-named electrode of the pair goes positive first
    NEGATIVE_FIRST = 1


@dataclass(frozen=True, slots=True)
class StimPulse:
    """Parameters of one stimulus command (a single pulse or a train).

    Parameters
    ----------
    amplitude_vpp
        Peak-to-peak voltage across the electrode pair, volts.
    duration_s
        Length of one pulse (one full sine cycle), seconds.
    pair
        Index of the stimulation electrode pair on the board (0-based).
    polarity
        Sign of the first half-cycle.
    n_pulses
        Pulses in the train; 1 for a single pulse.
    rate_hz
        Pulse repetition rate within a train, Hz. Ignored when ``n_pulses == 1``.
    """

    amplitude_vpp: float
    duration_s: float
    pair: int = 0
    polarity: Polarity = Polarity.POSITIVE_FIRST
    n_pulses: int = 1
    rate_hz: float = 1.0

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
