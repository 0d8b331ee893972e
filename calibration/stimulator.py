"""Stimulator output: delivered Vpp against commanded, and the correction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calibration._files import CalibrationError, Rule, now_utc, number, numbers


@dataclass(frozen=True, slots=True)
class StimulatorCalibration:
    """delivered_vpp = c0 + c1·commanded + c2·commanded², valid on a range."""

    KIND = "stimulator"
    coefficients: list[float]  # c0, c1, c2
    commanded_min_vpp: float
    commanded_max_vpp: float
    fitted_at: str
    rig_id: str
    residual_rms: float  # Vpp
    n_measurements: int

    # What a file may hold (calibration._files.from_dict checks every field).
    RULES: ClassVar[dict[str, Rule]] = {
        "coefficients": numbers(-1e3, 1e3, length=(3, 3)),
        "commanded_min_vpp": number(0, 100),
        "commanded_max_vpp": number(0, 100, low_open=True),
    }

    def inconsistency(self) -> str | None:
        """What disagrees between fields, or None: the range must be a range and
        the output must rise with the command over it (``command_for`` inverts
        the fit there; a flat or falling fit has no inverse)."""
        lo, hi = self.commanded_min_vpp, self.commanded_max_vpp
        if not lo < hi:
            return (
                f"commanded_min_vpp = {lo!r}, commanded_max_vpp = {hi!r}: allowed "
                "commanded_min_vpp < commanded_max_vpp"
            )
        _, c1, c2 = self.coefficients
        # the slope c1 + 2·c2·x is linear: positive at both ends, positive between
        if not (c1 + 2 * c2 * lo > 0 and c1 + 2 * c2 * hi > 0):
            return (
                f"coefficients = {self.coefficients!r}: the delivered Vpp must rise "
                f"with the command over {lo:g}–{hi:g} Vpp"
            )
        return None

    def delivered_for(self, commanded_vpp: float) -> float:
        """What the stimulator delivers for a command."""
        c0, c1, c2 = self.coefficients
        return c0 + c1 * commanded_vpp + c2 * commanded_vpp**2

    def command_for(self, desired_vpp: float) -> float:
        """The command that delivers ``desired_vpp`` (inverse of the fit)."""
        lo, hi = (
            self.delivered_for(self.commanded_min_vpp),
            self.delivered_for(self.commanded_max_vpp),
        )
        if not lo - 1e-9 <= desired_vpp <= hi + 1e-9:
            raise CalibrationError(
                f"{desired_vpp:g} Vpp is outside the calibrated output range "
                f"{lo:.3f}–{hi:.3f} Vpp; recalibrate over a wider range"
            )
        c0, c1, c2 = self.coefficients
        if abs(c2) < 1e-12:
            return (desired_vpp - c0) / c1
        roots = np.roots([c2, c1, c0 - desired_vpp])
        real = [r.real for r in roots if abs(r.imag) < 1e-9]
        inside = [
            r
            for r in real
            if self.commanded_min_vpp - 1e-6 <= r <= self.commanded_max_vpp + 1e-6
        ]
        return float(
            inside[0] if inside else min(real, key=lambda r: abs(r - desired_vpp))
        )


def fit_stimulator(
    commanded_vpp, delivered_vpp, *, rig_id: str
) -> StimulatorCalibration:
    """Quadratic fit of the stimulus monitor's readings against the commands.

    An output stage that compresses at high amplitude (the simulated board's):

    >>> commanded = np.linspace(1.0, 6.0, 11)
    >>> delivered = commanded * (1 - 0.03 * (commanded / 6) ** 2)
    >>> fit = fit_stimulator(commanded, delivered, rig_id="rig-1")
    >>> command = fit.command_for(4.0)  # what to send for 4.0 Vpp at the electrodes
    >>> round(command, 2), round(fit.delivered_for(command), 6)
    (4.06, 4.0)
    >>> fit.command_for(9.0)  # beyond what it can deliver
    Traceback (most recent call last):
    calibration._files.CalibrationError: 9 Vpp is outside the calibrated output ...
    """
    c = np.asarray(commanded_vpp, dtype=float)
    d = np.asarray(delivered_vpp, dtype=float)
    if c.size < 4 or np.unique(c).size < 3:
        raise CalibrationError("a stimulator fit needs ≥ 4 pulses at ≥ 3 amplitudes")
    c2, c1, c0 = np.polyfit(c, d, 2)
    resid = d - (c0 + c1 * c + c2 * c**2)
    if np.any(np.diff(c0 + c1 * np.sort(c) + c2 * np.sort(c) ** 2) < 0):
        raise CalibrationError("stimulator output is not monotonic over the range")
    return StimulatorCalibration(
        coefficients=[float(c0), float(c1), float(c2)],
        commanded_min_vpp=float(c.min()),
        commanded_max_vpp=float(c.max()),
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=float(np.sqrt(np.mean(resid**2))),
        n_measurements=int(c.size),
    )
