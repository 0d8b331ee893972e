"""Amplifier gain: µV per count and noise floor per channel, from a known test sine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calibration._files import CalibrationError, Rule, now_utc, number, numbers


@dataclass(frozen=True, slots=True)
class GainCalibration:
    """Input-referred scale of each channel."""

    KIND = "gain"
    uv_per_count: list[float]
    offset_counts: list[float]
    noise_uv_rms: list[float]
    test_amplitude_uvpp: float
    test_frequency_hz: float
    fitted_at: str
    rig_id: str
    residual_rms: float  # µV, the sine fit's residual (noise), worst channel
    n_measurements: int

    # What a file may hold (calibration._files.from_dict checks every field):
    # a scale of 0 would silence a channel, a negative one is not a fit's.
    RULES: ClassVar[dict[str, Rule]] = {
        "uv_per_count": numbers(0, 1e6, low_open=True),
        "offset_counts": numbers(-65536, 65536),
        "noise_uv_rms": numbers(0, 1e6),
        "test_amplitude_uvpp": number(0, 1e7, low_open=True),
        "test_frequency_hz": number(0, 1e6, low_open=True),
    }

    def inconsistency(self) -> str | None:
        """What disagrees between fields (one value per channel), or None."""
        n = len(self.uv_per_count)
        if len(self.offset_counts) != n or len(self.noise_uv_rms) != n:
            return (
                f"uv_per_count, offset_counts and noise_uv_rms have "
                f"{n}, {len(self.offset_counts)} and {len(self.noise_uv_rms)} "
                "values; allowed one per channel in each"
            )
        return None

    def counts_to_uv(self, counts: np.ndarray) -> np.ndarray:
        """Counts ``(n, channels)`` to µV at the electrodes."""
        x = np.asarray(counts, dtype=float)
        return (x - np.asarray(self.offset_counts)) * np.asarray(self.uv_per_count)


def fit_gain(
    counts: np.ndarray,
    *,
    fs_hz: float,
    amplitude_uvpp: float,
    frequency_hz: float,
    rig_id: str,
) -> GainCalibration:
    """Least-squares sine at the known frequency, per channel, while the board
    injects ``amplitude_uvpp`` peak-to-peak at the amplifier inputs."""
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2 or x.shape[0] < int(fs_hz / frequency_hz) * 5:
        raise CalibrationError(
            f"gain fit needs (n_samples, n_channels) covering ≥ 5 periods; got {x.shape}"
        )
    t = np.arange(x.shape[0]) / fs_hz
    w = 2 * np.pi * frequency_hz
    design = np.column_stack([np.sin(w * t), np.cos(w * t), np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    pp_counts = 2 * np.hypot(coef[0], coef[1])
    if np.any(pp_counts <= 0):
        raise CalibrationError("no test signal found on at least one channel")
    uv_per_count = amplitude_uvpp / pp_counts
    resid = x - design @ coef
    noise = resid.std(axis=0) * uv_per_count
    return GainCalibration(
        uv_per_count=uv_per_count.tolist(),
        offset_counts=coef[2].tolist(),
        noise_uv_rms=noise.tolist(),
        test_amplitude_uvpp=amplitude_uvpp,
        test_frequency_hz=frequency_hz,
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=float(noise.max()),
        n_measurements=int(x.shape[0]),
    )
