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

The stated accuracy is the data's, not a constant: the consistent brackets
intersect in a range, and the delay is somewhere in it (for a camera whose
exposure starts a fixed time after its trigger), so half its width is how far
the middle can be from the truth (``accuracy_samples``). One wrong bracket (a
flash seen a frame late) that overlaps that range is not outvoted, it cuts the
range short of the truth; so the range stated is where all but a few
(``tolerated_wrong_flashes``) brackets agree. Flashes that land at
phases bunched together (a loaded host cannot aim them), or that are left out
because the frame before theirs was lost, leave a wide range; issue 16 saw 13
usable flashes bracket the delay only to 43–208 samples, whose middle, 125,
missed the true 60 by 66 while a fixed "50 samples" was claimed. With
``required_accuracy_samples`` the fit refuses ("not determined") rather than
give a middle it cannot vouch for; ``rig.procedures.calibrate.calibrate_timing``
flashes more, aimed into the range left, until it is narrow enough.
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
    # Half the width of the delay range every consistent flash allows: the
    # offset is within this of the truth. None in a file from before it was
    # stated.
    accuracy_samples: float | None = None

    # What a file may hold (calibration._files.from_dict checks every field):
    # an offset of up to a minute either way, a frame period of up to 10 min.
    RULES: ClassVar[dict[str, Rule]] = {
        "offset_samples": number(-1e7, 1e7),
        "offset_s": number(-60, 60),
        "jitter_samples": number(0, 1e7),
        "frame_period_samples": number(0, 1e8, low_open=True),
        "accuracy_samples": number(0, 1e7, optional=True),
    }


def fit_timing(
    led_onsets: np.ndarray,
    first_frame_samples: np.ndarray,
    *,
    frame_period_samples: float,
    fs_hz: float,
    rig_id: str,
    delay_window_periods: tuple[float, float] = (-0.125, 0.875),
    required_accuracy_samples: float | None = None,
) -> TimingCalibration:
    """Delay from trigger to exposure, from LED onsets and the first frame showing each.

    The delay is brought into ``delay_window_periods`` (in frame periods, one
    period wide) by whole periods: see the module's docstring. The result's
    ``accuracy_samples`` is half the width of the range the flashes allow with
    up to ``tolerated_wrong_flashes`` of them wrong, None when fewer than half
    of them agree on any delay (the range is then not one to vouch for). With
    ``required_accuracy_samples`` a fit that cannot state an accuracy that good
    is refused (CalibrationError, "not determined").
    """
    led = np.asarray(led_onsets, dtype=float)
    first = np.asarray(first_frame_samples, dtype=float)
    if led.size != first.size:
        raise CalibrationError(
            f"timing fit: {led.size} LED events for {first.size} first frames; "
            "each event needs its first frame"
        )
    if led.size < 5:
        # Too few usable flashes is a refusal like any other (a loaded host
        # loses frames, and a flash whose first frame may be lost is left out).
        raise CalibrationError(
            "timing: not determined: the fit needs ≥ 5 LED flashes each with "
            f"its first frame seen; got {led.size}. Flash more, or check that "
            "the camera delivers frames and the LED region is right"
        )
    low, high = delay_window_periods
    if not math.isclose(high - low, 1.0):
        raise CalibrationError(
            f"delay_window_periods={delay_window_periods}: must be one period wide"
        )
    period = float(frame_period_samples)
    lag = first - led  # in [-delay, -delay + P) when each frame's trigger is right
    wrong = tolerated_wrong_flashes(led.size)
    start, end, n_consistent = consistent_delay_range(-lag, period, wrong=wrong)
    delay = (start + end) / 2
    accuracy = (end - start) / 2 if 2 * n_consistent > led.size else None
    if required_accuracy_samples is not None and (
        accuracy is None or accuracy > required_accuracy_samples
    ):
        raise CalibrationError(
            f"timing: not determined: {n_consistent} of {led.size} flashes agree; "
            f"allowing {wrong} to be wrong, the delay is within a range "
            f"{end - start:.0f} samples wide (±{(end - start) / 2:.0f}); required "
            f"±{required_accuracy_samples:g} samples. Flash more "
            "(more of them land at phases that narrow the range), or check that "
            "the LED region is right"
        )
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
        accuracy_samples=None if accuracy is None else float(accuracy),
    )


def consistent_delay_range(
    lower: np.ndarray, period: float, *, wrong: int = 0
) -> tuple[float, float, int]:
    """The delay range ``[start, end)`` inside all but ``wrong`` of the most
    brackets ``[lower, lower + P)`` any delay is inside, and that most.

    The range holds the truth as long as at most ``wrong`` brackets are wrong:
    a wrong bracket that overlaps the right ones' range only cuts it, so the
    deepest range alone would follow it. Where the range so found is in
    pieces, it spans them all: the data do not say which holds the delay.
    """
    lower = np.asarray(lower, dtype=float)
    # Sweep the bracket edges: +1 at each lower bound, −1 at each upper bound.
    edges = np.concatenate([lower, lower + period])
    steps = np.concatenate([np.ones(lower.size), -np.ones(lower.size)])
    order = np.lexsort((steps, edges))  # at a tie, close before opening
    edges, depth = edges[order], np.cumsum(steps[order])
    best = depth.max()
    at = np.flatnonzero(depth >= best - wrong)  # [edges[i], edges[i + 1])
    return float(edges[at[0]]), float(edges[at[-1] + 1]), int(best)


def tolerated_wrong_flashes(n_flashes: int) -> int:
    """How many of ``n_flashes`` brackets the stated range allows to be wrong:
    one in 30, at least one. A flash seen a frame late (an LED read as off at
    its edge, a simulator that drew a frame before it heard of the flash) gives
    a bracket one period early; under load in issue 16 about one flash in a
    hundred was."""
    return max(1, math.ceil(n_flashes / 30))


def first_lit_frames(
    led_states: np.ndarray,
    frame_samples: np.ndarray,
    frame_numbers: np.ndarray | None = None,
) -> np.ndarray:
    """The stamped trigger sample of the first frame of each run of lit frames,
    where the frame before it is known to have been seen unlit.

    ``led_states`` (1 lit, 0 unlit, -1 not known: ``classify_led``'s bits, or
    booleans), ``frame_samples`` (nan: not known) and ``frame_numbers`` (the
    camera's, None where it gives none) are per frame as the host received
    them. A lit frame after one whose state is not known does not start a run
    (the unknown one may have shown the flash first). With frame numbers, a
    frame repeating a number already seen (a duplicate, or one out of order) is
    ignored, and a run whose first frame follows a gap in the numbers is left
    out: the lost frame may have been the first to show the flash. Without
    them the frames are taken as consecutive.
    """
    states = np.asarray(led_states).astype(np.int8)
    samples = np.asarray(frame_samples, dtype=float)
    if states.shape != samples.shape:
        raise CalibrationError(
            f"first_lit_frames: {states.size} LED states for {samples.size} frames"
        )
    if states.size == 0:
        return np.zeros(0)
    if frame_numbers is None:
        follows = np.r_[False, np.ones(states.size - 1, dtype=bool)]
    else:
        numbers = np.asarray(frame_numbers, dtype=np.int64)
        if numbers.shape != states.shape:
            raise CalibrationError(
                f"first_lit_frames: {numbers.size} frame numbers for "
                f"{states.size} frames"
            )
        highest = np.maximum.accumulate(numbers)
        new = np.r_[True, numbers[1:] > highest[:-1]]
        states, samples, numbers = states[new], samples[new], numbers[new]
        follows = np.r_[False, np.diff(numbers) == 1]
    after_unlit = np.r_[False, states[:-1] == 0] & follows
    starts = (states == 1) & after_unlit & np.isfinite(samples)
    return samples[starts]


def pair_runs_with_flashes(
    run_samples: np.ndarray,
    onsets: np.ndarray,
    period: float,
    *,
    max_lag_periods: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each lit run's first frame (its trigger sample as stamped) with the
    LED flash it shows: ``(onsets, firsts)`` of the pairs.

    Stamps may all be whole frames off (the host's guess of the trigger), so
    a run is not paired with the nearest flash: the lag g (run − flash) that
    the most runs share to within a period is found first (flashes are some
    ten frames apart, so only the true lag, whole frames off as every stamp
    is, gathers them), and each run is paired with the flash whose lag is
    within a period of g. A flash is used once. Stamps further off than
    ``max_lag_periods`` (a second at 60 fps; issue 16 saw 0.1 s) are not looked
    for, which keeps the search short when many flashes are taken.
    """
    runs = np.asarray(run_samples, dtype=float)
    leds = np.asarray(onsets, dtype=float)
    if runs.size == 0 or leds.size == 0:
        return np.zeros(0), np.zeros(0)
    lag = runs[:, None] - leds[None, :]  # (run, flash)
    candidates = lag[np.abs(lag) <= max_lag_periods * period]
    if candidates.size == 0:
        return np.zeros(0), np.zeros(0)
    scores = [int(np.any(np.abs(lag - g) <= period, axis=1).sum()) for g in candidates]
    best = np.array(scores) == max(scores)
    g = float(np.median(candidates[best]))
    pair_onsets, firsts, used = [], [], set()
    for j, run in enumerate(runs):
        i = int(np.argmin(np.abs(lag[j] - g)))
        if abs(lag[j, i] - g) <= period and i not in used:
            used.add(i)
            pair_onsets.append(leds[i])
            firsts.append(run)
    return np.array(pair_onsets), np.array(firsts)


def fit_timing_from_frames(
    led_states: np.ndarray,
    frame_samples: np.ndarray,
    frame_numbers: np.ndarray | None,
    led_onsets: np.ndarray,
    *,
    frame_period_samples: float,
    fs_hz: float,
    rig_id: str,
    required_accuracy_samples: float | None = None,
) -> TimingCalibration:
    """The timing calibration from every frame the host received during the
    flashes (``first_lit_frames``) and the board's LED onsets: each usable lit
    run paired with its flash (``pair_runs_with_flashes``), then ``fit_timing``."""
    firsts = first_lit_frames(led_states, frame_samples, frame_numbers)
    onsets, paired = pair_runs_with_flashes(
        firsts, np.sort(np.asarray(led_onsets, dtype=float)), frame_period_samples
    )
    return fit_timing(
        onsets,
        paired,
        frame_period_samples=frame_period_samples,
        fs_hz=fs_hz,
        rig_id=rig_id,
        required_accuracy_samples=required_accuracy_samples,
    )
