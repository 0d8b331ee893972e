"""Camera vs electrical clock: the delay from a frame's trigger to its exposure.

The board flashes an LED in the camera's view at known sample numbers. A frame
stamped with trigger sample s captures the scene at s + delay. The first frame
showing the LED satisfies s + delay ≥ L (the LED's onset), so s − L falls in
[−delay, −delay + P) for frame period P; with the LED at random phases, its mean
is −delay + P/2. Averaging over n events gives the delay to about P/√(12·n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration._files import CalibrationError, now_utc


@dataclass(frozen=True, slots=True)
class TimingCalibration:
    """Frame timestamps are ``trigger sample + offset_samples``."""

    KIND = "timing"
    offset_samples: float
    offset_s: float
    jitter_samples: float  # SD of the residual beyond the frame-phase spread
    frame_period_samples: float
    fitted_at: str
    rig_id: str
    residual_rms: float  # samples
    n_measurements: int


def fit_timing(
    led_onsets: np.ndarray,
    first_frame_samples: np.ndarray,
    *,
    frame_period_samples: float,
    fs_hz: float,
    rig_id: str,
) -> TimingCalibration:
    """Delay from trigger to exposure, from LED onsets and the first frame showing each."""
    led = np.asarray(led_onsets, dtype=float)
    first = np.asarray(first_frame_samples, dtype=float)
    if led.size < 5 or led.size != first.size:
        raise CalibrationError(
            "timing fit needs ≥ 5 LED events each with its first frame; "
            f"got {led.size} events and {first.size} frames"
        )
    lag = first - led  # in [-delay, -delay + P)
    delay = frame_period_samples / 2 - lag.mean()
    phase_sd = frame_period_samples / np.sqrt(12)
    resid = lag - lag.mean()
    jitter = float(np.sqrt(max(resid.var() - phase_sd**2, 0.0)))
    return TimingCalibration(
        offset_samples=float(delay),
        offset_s=float(delay / fs_hz),
        jitter_samples=jitter,
        frame_period_samples=float(frame_period_samples),
        fitted_at=now_utc(),
        rig_id=rig_id,
        residual_rms=float(resid.std()),
        n_measurements=int(led.size),
    )
