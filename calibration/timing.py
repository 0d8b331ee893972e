"""Camera vs electrical clock: the delay from a frame's trigger to its exposure.

The board flashes an LED in the camera's view at known sample numbers. A frame
stamped with trigger sample s captures the scene at s + delay. The first frame
showing the LED satisfies s + delay ≥ L (the LED's onset) while the frame before
it (s − P, for frame period P) did not, so each event brackets the delay:

    L − s ≤ delay < L − s + P

Flashes at spread phases of the frame period give brackets whose intersection
is about P/n wide for n events (averaging the lag instead gives only P/√(12·n)).
A frame that is late or an LED that is seen late would make the brackets
disagree, so the fit takes the delay consistent with the most events, and the
middle of that range; events outside it are counted as inconsistent.

A frame stamped with the wrong trigger, a whole number k of periods off (the
host guessed its trigger from arrival times on a busy machine, issue 16),
moves its event's bracket by k·P: the events stamped alike still agree with
each other, on a delay k·P away. A triggered camera exposes after its trigger
and before the next one, so the fit brings the delay into the window
``delay_window_periods`` (−1/8 to 7/8 of a period: room for the estimate's own
scatter around a delay of nearly 0) by whole periods. The delay is thus known
modulo the period from the brackets, and its whole periods from the physics,
never from which trigger the host guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from calibration._files import CalibrationError, Rule, now_utc, number


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

    # What a file may hold (calibration._files.from_dict checks every field):
    # an offset of up to a minute either way, a frame period of up to 10 min.
    RULES: ClassVar[dict[str, Rule]] = {
        "offset_samples": number(-1e7, 1e7),
        "offset_s": number(-60, 60),
        "jitter_samples": number(0, 1e7),
        "frame_period_samples": number(0, 1e8, low_open=True),
    }


def fit_timing(
    led_onsets: np.ndarray,
    first_frame_samples: np.ndarray,
    *,
    frame_period_samples: float,
    fs_hz: float,
    rig_id: str,
    delay_window_periods: tuple[float, float] = (-0.125, 0.875),
) -> TimingCalibration:
    """Delay from trigger to exposure, from LED onsets and the first frame showing each.

    The delay is brought into ``delay_window_periods`` (in frame periods, one
    period wide) by whole periods: see the module's docstring.
    """
    led = np.asarray(led_onsets, dtype=float)
    first = np.asarray(first_frame_samples, dtype=float)
    if led.size < 5 or led.size != first.size:
        raise CalibrationError(
            "timing fit needs ≥ 5 LED events each with its first frame; "
            f"got {led.size} events and {first.size} frames"
        )
    low, high = delay_window_periods
    if not math.isclose(high - low, 1.0):
        raise CalibrationError(
            f"delay_window_periods={delay_window_periods}: must be one period wide"
        )
    period = float(frame_period_samples)
    lag = first - led  # in [-delay, -delay + P) when each frame's trigger is right
    delay = _most_consistent_delay(-lag, period)
    delay -= period * math.floor(delay / period - low)  # into the window
    # Each event's lag by whole periods to the fitted delay's frame (a frame
    # stamped k triggers off is k periods off): the scatter left is the phase's
    # and the jitter's.
    lag = lag - period * np.floor((lag + delay) / period)
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


def _most_consistent_delay(lower: np.ndarray, period: float) -> float:
    """Middle of the delay range inside the most brackets [lower, lower + P)."""
    # Sweep the bracket edges: +1 at each lower bound, −1 at each upper bound.
    edges = np.concatenate([lower, lower + period])
    steps = np.concatenate([np.ones(lower.size), -np.ones(lower.size)])
    order = np.lexsort((steps, edges))  # at a tie, close before opening
    edges, depth = edges[order], np.cumsum(steps[order])
    best = depth.max()
    start = int(np.argmax(depth == best))
    return float((edges[start] + edges[start + 1]) / 2)
