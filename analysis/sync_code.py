"""Optical sync code: which trigger each camera frame shows, proven by an LED.

The board drives an LED in the camera's view with a pseudo-random on/off code
and reports every flash on its own clock (LED_FLASHED: onset sample, duration).
From those events and the trigger samples (CAMERA_TRIGGERED) the host knows the
LED state every trigger's exposure saw; it reads the LED in every frame it
received, and aligns the two bit sequences. Frame identity then rests on the
image, not on when the frame arrived.

The code (``make_sync_code``): one bit per slot of ``slot_periods`` camera
periods (default 1); in a 1-slot the host commands an LED pulse of
``pulse_periods`` periods (default 1), aimed to start midway between two
exposures, so that exactly one exposure falls inside it even when the command
arrives up to half a period early or late. Consecutive 1-slots merge into one
lit stretch. Bits come from a seeded PRNG with runs capped at ``max_run``
slots (default 3): the code changes every ~2 frames everywhere (a drop inside
a constant run cannot be placed, so runs must be short) and any 48 slots are
unique in an hour of code. An m-sequence gives exact window uniqueness, but
only for error-free windows without drops, which a camera does not give; the
run cap and the recorded seed are what matter. The host need not be on time:
the expected bits come from the board's LED_FLASHED events, not the schedule.

The alignment (``align_frames_to_triggers``) is a least-cost monotone path
through (frame, trigger): a mismatched bit costs ``mismatch_cost`` (1),
triggers without a frame ``gap_cost`` (2) per gap whatever its length, a frame
showing the same trigger as the one before ``stay_cost`` (2) unless flagged a
repeat (pixel-identical, ``repeated_frames``: then it must stay, for free, and
adds no evidence). Forward and backward passes give, for every frame and
trigger, the cost of the best whole path through it (max-marginals). A frame
is assigned only if every other trigger costs at least ``margin`` (4) more,
if it lies in a run of at least ``min_run`` (6) assigned frames, and if the
path around it mismatches in at most ``max_local_mismatch`` of its bits.

Why these numbers: ``margin`` must exceed ``gap_cost`` and ``stay_cost``, or a
single unseen drop or repeat near either end of the run could be assigned
with confidence; and it must not exceed ``gap_cost + stay_cost``, or no frame
inside a run of equal bits could ever be assigned (shifting one frame by a
gap and a stay costs exactly that). Near a drop, a frame needs ``margin``
mismatches of evidence against moving the drop past it. ``min_run`` guards
against a few misread bits that a shifted path happens to explain.

The run's ends are free (the first frame may show any trigger, the last
frame any later one), so they anchor nothing. Inside the run a path that
leaves the best one must come back, and merging k drops into one gap saves
it at most k - 1 gaps; at an end it need not come back, and the best path
spares every drop it leaves out there (k gaps: two drops near the end, with a
misread bit, once put two frames on the wrong trigger with margin 4). So the
rivals detached from the best path up to the start (first frame behind it)
or through the end (last frame ahead of it), the side where the best path
would have needed one more event had the recording gone on, cost one gap
less: the ends are then no weaker than the middle, and the last frames need
``margin`` mismatches of their own against a drop before them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from analysis._kernels import (
    sync_forward,
    sync_forward_detached,
    sync_marginals,
    sync_rival,
)

Region = tuple[int, int, int, int]  # (top, bottom, left, right) pixels, half-open
# Cells of the (frame, trigger) table the aligner will fill (float32: 4 bytes
# each); beyond this, pass a band (``band_from_times``).
MAX_CELLS = 50_000_000
# An exposure's edges are known to within this (the timing calibration's
# uncertainty and the trigger's jitter): an LED edge closer than this to an
# exposure makes that trigger's expected state "uncertain", not a wrong bit.
EDGE_MARGIN_S = 0.5e-3
# Frames whose trigger lies outside the triggers given (by this much, or by
# as much as the frame numbers span more than the triggers) may still be
# numbered by the camera; they stay unassigned (no trigger to name).
FRAME_NUMBER_OVERHANG = 64
# How far a slipped frame counter is looked for around each frame, triggers.
FRAME_NUMBER_SLIP = 8


# ------------------------------------------------------------------ the code


@dataclass(frozen=True, slots=True)
class SyncCode:
    """A pseudo-random LED code: one bit per slot of camera periods."""

    bits: np.ndarray  # uint8, one per slot
    seed: int
    slot_periods: int  # camera periods per slot
    pulse_periods: float  # LED on-time of a 1-slot, camera periods
    max_run: int  # longest run of equal bits, slots

    def pulse_schedule(
        self, frame_period_samples: float, start_sample: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nominal pulse onsets and durations (samples) of the 1-slots.

        Slot k starts at ``start_sample + k · slot_periods · period``; pass the
        first exposure + half a period, so that pulses start between exposures.
        This is when the host aims to send LED_PULSE; the board's LED_FLASHED
        events, not this schedule, say when the LED was on.
        """
        slot = self.slot_periods * frame_period_samples
        onsets = start_sample + np.flatnonzero(self.bits) * slot
        duration = round(self.pulse_periods * frame_period_samples)
        return np.round(onsets).astype(np.int64), np.full(
            onsets.size, duration, dtype=np.int64
        )


def make_sync_code(
    n_slots: int,
    *,
    seed: int,
    slot_periods: int = 1,
    pulse_periods: float = 1.0,
    max_run: int = 3,
) -> SyncCode:
    """A seeded random on/off code with no run longer than ``max_run`` slots."""
    if n_slots < 1:
        raise ValueError(f"n_slots={n_slots}: need at least 1")
    if slot_periods < 1:
        raise ValueError(f"slot_periods={slot_periods}: need at least 1")
    if not 1.0 <= pulse_periods <= slot_periods:
        raise ValueError(
            f"pulse_periods={pulse_periods}: allowed 1 (one whole frame period lit) "
            f"to slot_periods={slot_periods}"
        )
    if max_run < 1:
        raise ValueError(f"max_run={max_run}: need at least 1")
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, n_slots).astype(np.uint8)
    run = 1
    for i in range(1, n_slots):
        run = run + 1 if bits[i] == bits[i - 1] else 1
        if run > max_run:
            bits[i] ^= 1
            run = 1
    return SyncCode(bits, seed, slot_periods, float(pulse_periods), max_run)


def fill_lost_triggers(
    trigger_samples: np.ndarray, trigger_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every trigger from the first count to the last: ``(samples, counts,
    lost)``, the triggers whose event never arrived filled in between their
    neighbours (the board triggers at a constant period; exact when the period
    is a whole number of samples, else within a sample), ``lost`` marking them.

    The camera still exposed on a trigger whose CAMERA_TRIGGERED the host lost
    (a full USB buffer drops board frames): without it every later frame's
    trigger index, and the constant between frame numbers and triggers, would
    be off by the number lost. Counts that do not increase (the board
    restarted its count) are returned as they are, nothing filled.
    """
    samples = np.asarray(trigger_samples, dtype=np.int64)
    counts = np.asarray(trigger_counts, dtype=np.int64)
    if samples.shape != counts.shape:
        raise ValueError("trigger_samples and trigger_counts differ in length")
    if counts.size < 2 or np.any(np.diff(counts) <= 0):
        return samples, counts, np.zeros(counts.size, dtype=bool)
    full = np.arange(counts[0], counts[-1] + 1, dtype=np.int64)
    filled = np.rint(np.interp(full, counts, samples)).astype(np.int64)
    lost = ~np.isin(full, counts)
    return filled, full, lost


def led_states_from_flashes(
    trigger_samples: np.ndarray,
    exposure_samples: float,
    flash_onsets: np.ndarray,
    flash_durations: np.ndarray,
    *,
    delay_samples: float = 0.0,
    margin_samples: float = 0.0,
) -> np.ndarray:
    """The LED state each trigger's exposure saw: 1 on, 0 off, -1 uncertain.

    Exposure k spans ``[trigger + delay, trigger + delay + exposure)``, widened
    by ``margin_samples`` each side (the timing calibration's uncertainty and
    jitter). The LED is on over the union of ``[onset, onset + duration)``. A
    widened exposure wholly inside lit time is 1, wholly outside it 0; one that
    straddles an edge is -1 (such frames carry no information). All in device
    samples (the board's LED_FLASHED events give onsets and durations).
    """
    triggers = np.asarray(trigger_samples, dtype=np.float64)
    onsets = np.asarray(flash_onsets, dtype=np.float64)
    durations = np.asarray(flash_durations, dtype=np.float64)
    if onsets.shape != durations.shape:
        raise ValueError(
            f"flash_onsets ({onsets.size}) and flash_durations ({durations.size}) "
            "differ in length"
        )
    if exposure_samples < 0 or margin_samples < 0:
        raise ValueError("exposure_samples and margin_samples must be ≥ 0")
    start = triggers + delay_samples - margin_samples
    stop = triggers + delay_samples + max(exposure_samples, 1e-9) + margin_samples
    states = np.zeros(triggers.size, dtype=np.int8)
    if onsets.size == 0:
        return states
    lit_starts, lit_ends = _merge(onsets, onsets + durations)
    # The first lit interval ending after the exposure starts decides.
    idx = np.searchsorted(lit_ends, start, side="right")
    has = idx < lit_starts.size
    s = np.where(has, lit_starts[np.minimum(idx, lit_starts.size - 1)], np.inf)
    e = np.where(has, lit_ends[np.minimum(idx, lit_ends.size - 1)], np.inf)
    states[(s <= start) & (stop <= e)] = 1
    states[(s < stop) & ~((s <= start) & (stop <= e))] = -1
    return states


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of half-open intervals, as sorted disjoint (starts, ends)."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(starts.size, dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:], starts.size) - 1
    return starts[first], reach[last]


# ------------------------------------------------------------- the LED seen


@dataclass(frozen=True, slots=True)
class LedReading:
    """The LED seen in each frame."""

    bits: np.ndarray  # int8: 1 on, 0 off, -1 ambiguous
    confidence: np.ndarray  # 0 (on the threshold) … 1 (at a cluster centre or beyond)
    threshold: float
    off_level: float
    on_level: float
    separation: float  # (on - off) / pooled robust SD; below min_separation: not seen


def led_brightness(
    frames: np.ndarray, region: Region, *, surround_px: int | None = None
) -> np.ndarray:
    """The LED's contrast in each frame: (region mean − surround median) / surround.

    ``frames``: ``(n, height, width)``. The surround is a ring ``surround_px``
    wide (default: half the region's size) around the region, clipped to the
    image. Dividing by it cancels a global gain change (auto-exposure, lamp
    drift); its median ignores part of the worm crossing it.
    """
    stack = np.asarray(frames)
    if stack.ndim != 3:
        raise ValueError(f"frames must be (n, height, width); got shape {stack.shape}")
    n, h, w = stack.shape
    top, bottom, left, right = (int(v) for v in region)
    if not (0 <= top < bottom <= h and 0 <= left < right <= w):
        raise ValueError(f"region {region} is not inside a {h}×{w} image")
    ring = surround_px or max(2, max(bottom - top, right - left) // 2)
    t0, b0 = max(0, top - ring), min(h, bottom + ring)
    l0, r0 = max(0, left - ring), min(w, right + ring)
    outer = stack[:, t0:b0, l0:r0].astype(np.float32)
    mask = np.ones(outer.shape[1:], dtype=bool)
    mask[top - t0 : bottom - t0, left - l0 : right - l0] = False
    inside = stack[:, top:bottom, left:right].reshape(n, -1).mean(axis=1)
    if not mask.any():  # the region fills the image: no surround to compare
        return np.asarray(inside, dtype=np.float64)
    surround = np.median(outer[:, mask], axis=1).astype(np.float64)
    return (inside - surround) / np.maximum(surround, 1.0)


def classify_led(
    brightness: np.ndarray,
    *,
    min_confidence: float = 0.5,
    min_separation: float = 6.0,
) -> LedReading:
    """Split frame brightness into off and on by two-means; flag ambiguous frames.

    Confidence is the distance from the threshold in half the gap between the
    two cluster centres (1 at a centre). Frames below ``min_confidence`` (an
    LED edge inside the exposure, a frame in motion blur) are -1. If the two
    clusters are not ``min_separation`` robust SDs apart (the LED never lit,
    or the region misses it), every frame is -1.
    """
    b = np.asarray(brightness, dtype=np.float64)
    nan = float("nan")
    if b.size < 2 or not np.all(np.isfinite(b)) or np.ptp(b) == 0:
        return LedReading(
            np.full(b.size, -1, np.int8), np.zeros(b.size), nan, nan, nan, 0.0
        )
    threshold = (b.min() + b.max()) / 2
    for _ in range(100):
        low, high = b[b < threshold], b[b >= threshold]
        new = (np.median(low) + np.median(high)) / 2
        if new == threshold:
            break
        threshold = new
    off, on = float(np.median(low)), float(np.median(high))
    spread = np.concatenate([low - off, high - on])
    sd = 1.4826 * float(np.median(np.abs(spread)))
    separation = (on - off) / max(sd, 1e-12 * max(abs(on), abs(off), 1.0))
    half = (on - off) / 2
    confidence = np.clip(np.abs(b - threshold) / half, 0.0, 1.0)
    bits = (b >= threshold).astype(np.int8)
    bits[confidence < min_confidence] = -1
    if separation < min_separation or min(low.size, high.size) < 2:
        bits[:] = -1
    return LedReading(bits, confidence, float(threshold), off, on, float(separation))


def repeated_frames(frames: np.ndarray) -> np.ndarray:
    """True where a frame is pixel-identical to the one before (a repeat).

    A sensor never reads out the same noise twice: an identical frame is a
    buffer delivered again (duplicate) or a frozen camera.
    """
    stack = np.asarray(frames)
    out = np.zeros(len(stack), dtype=bool)
    for k in range(1, len(stack)):
        out[k] = np.array_equal(stack[k], stack[k - 1])
    return out


# ---------------------------------------------------------------- alignment


@dataclass(frozen=True, slots=True)
class AlignmentRecord:
    """How a recording's frames were put on the triggers, for its metadata."""

    method: str  # "led_code" or "frame_numbers+led_code"
    verdict: str  # "aligned", "partial" or "not_determined"
    n_frames: int
    n_triggers: int
    n_aligned: int
    n_not_determined: int
    n_repeats: int  # aligned frames showing the same trigger as the previous
    n_dropped_triggers: int  # triggers with no frame, between aligned frames
    n_compared: int  # aligned frames whose bit and expected bit are both known
    n_mismatched: int  # … of which disagree: the residual
    mismatch_fraction: float
    margin: float  # cost every other placement of an aligned frame must exceed
    min_margin: float  # smallest margin among aligned frames (inf if none)
    frame_number_offset: int | None = None  # trigger = camera frame number + this
    frame_number_disagreements: int | None = None  # code said otherwise
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (inf becomes None)."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        if not np.isfinite(out["min_margin"]):
            out["min_margin"] = None
        return out


def band_from_times(
    frame_times_s: np.ndarray, trigger_times_s: np.ndarray, *, slack_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame trigger range ``[lo, hi)`` from host arrival times ± ``slack_s``.

    Only bounds the search on long recordings: frame identity still comes from
    the code. The slack must exceed the worst host latency difference between a
    trigger event and its frame (seconds, not the 100 ms seen under load).
    """
    frames = np.asarray(frame_times_s, dtype=np.float64)
    triggers = np.asarray(trigger_times_s, dtype=np.float64)
    lo = np.searchsorted(triggers, frames - slack_s, side="left")
    hi = np.searchsorted(triggers, frames + slack_s, side="right")
    return lo.astype(np.int64), hi.astype(np.int64)


def align_frames_to_triggers(
    observed_bits: np.ndarray,
    expected_bits: np.ndarray,
    *,
    frame_numbers: np.ndarray | None = None,
    repeats: np.ndarray | None = None,
    band: tuple[np.ndarray, np.ndarray] | None = None,
    mismatch_cost: float = 1.0,
    gap_cost: float = 2.0,
    stay_cost: float = 2.0,
    margin: float = 4.0,
    max_local_mismatch: float = 0.2,
    local_window: int = 40,
    min_aligned_fraction: float = 0.9,
    min_run: int = 6,
) -> tuple[np.ndarray, AlignmentRecord]:
    """Each recorded frame's trigger index (-1: not determined), and the record.

    ``observed_bits``: per frame, the LED seen (1, 0, -1 ambiguous);
    ``expected_bits``: per trigger, the LED its exposure saw (1, 0, -1
    uncertain; ``led_states_from_flashes``). ``repeats``: frames known to
    repeat the previous one (``repeated_frames``); they get its trigger.
    ``frame_numbers``: the camera's own frame counter, if it has one
    (non-decreasing; trigger = frame number + a constant found from the code,
    then every frame cross-checked against the code). ``band``: per-frame
    ``[lo, hi)`` trigger range to search (required above ``MAX_CELLS``).

    A frame is assigned only if every other trigger costs at least ``margin``
    more (see the module docstring), it lies in a run of ``min_run`` assigned
    frames, and its ±``local_window`` frames along the path mismatch in at
    most ``max_local_mismatch`` of compared bits. The verdict is "aligned" when
    at least ``min_aligned_fraction`` of frames are assigned, "partial" when
    some are, "not_determined" when none are.
    """
    obs = _bits(observed_bits, "observed_bits")
    exp = _bits(expected_bits, "expected_bits")
    n, n_trig = obs.size, exp.size
    rep = np.zeros(n, dtype=np.bool_) if repeats is None else np.asarray(repeats, bool)
    if rep.shape != (n,):
        raise ValueError(f"repeats has {rep.size} entries for {n} frames")
    rep = rep.copy()
    if n:
        rep[0] = False
    if margin <= max(gap_cost, stay_cost):
        raise ValueError(
            f"margin={margin} must exceed gap_cost={gap_cost} and "
            f"stay_cost={stay_cost}: else one unseen drop or repeat could be "
            "assigned with confidence"
        )
    for name, v in (("mismatch_cost", mismatch_cost), ("gap_cost", gap_cost),
                    ("stay_cost", stay_cost)):  # fmt: skip
        if not (v > 0 and (v * 8) == int(v * 8)):
            raise ValueError(f"{name}={v}: must be > 0 and a multiple of 1/8")
    notes: list[str] = []
    offset = disagreements = None
    method = "led_code"
    fn: np.ndarray | None = None
    if frame_numbers is not None:
        fn = np.asarray(frame_numbers, dtype=np.int64)
        if fn.shape != (n,):
            raise ValueError(f"frame_numbers has {fn.size} entries for {n} frames")
        if n and np.any(np.diff(fn) < 0):
            raise ValueError(
                "frame_numbers must not decrease (unwrap a wrapping counter first)"
            )
        method = "frame_numbers+led_code"
        if n:
            rep[1:] |= np.diff(fn) == 0  # the camera sent one exposure twice
        offset, note = _frame_number_offset(obs, exp, fn, margin * mismatch_cost)
        if note:
            notes.append(note)
        if offset is not None and band is None:
            slack = 64  # the cross-check sees a frame counter off by up to this
            band = (fn + offset - slack, fn + offset + slack + 1)
    if n == 0 or n_trig == 0:
        return np.full(n, -1, np.int64), _record(
            method, obs, rep, exp, np.full(n, -1, np.int64), np.full(n, np.inf), margin,
            offset, disagreements, [*notes, "no frames or no triggers"],
            min_aligned_fraction,
        )  # fmt: skip
    lo, hi = _band(band, n, n_trig)
    # A repeat is the same image again: it adds no evidence (else one misread
    # frame, frozen for a second, would outvote everything around it).
    fresh_obs = np.where(rep, -1, obs).astype(np.int8)
    trig, gain = _assign(
        fresh_obs, exp, rep, lo, hi, mismatch_cost, gap_cost, stay_cost
    )
    trig[gain < margin] = -1
    trig = _local_residual_check(obs, exp, trig, max_local_mismatch, local_window)
    trig = _drop_short_runs(trig, min_run)
    if fn is not None and offset is not None:
        by_number = fn + offset
        fits, better = _window_proof(
            fresh_obs, exp, by_number, local_window, margin * mismatch_cost
        )
        # A frame keeps its number's trigger where the code placed it there,
        # or, where the code placed it nowhere (drops too dense for the path
        # alone), where the bits of its ±local_window frames prove the number
        # against a slip of up to FRAME_NUMBER_SLIP triggers either way; else
        # where the nearest frames the code placed agree on both sides.
        trusted = np.where(
            trig >= 0,
            trig == by_number,
            fits | _confirmed_by_code(trig, by_number, local_window),
        )
        trusted &= ~better
        disagreements = int((((trig >= 0) & (trig != by_number)) | better).sum())
        if disagreements:
            notes.append(
                f"{disagreements} frame(s) where the code and the camera's frame "
                "numbers disagree: frame numbers not trusted there"
            )
        inside = (by_number >= 0) & (by_number < n_trig)
        trig = np.where(inside & trusted, by_number, -1)
        gain = np.where(trig >= 0, np.maximum(gain, margin), gain)
    return trig, _record(
        method, obs, rep, exp, trig, gain, margin, offset, disagreements, notes,
        min_aligned_fraction,
    )  # fmt: skip


def _bits(values: np.ndarray, name: str) -> np.ndarray:
    bits = np.asarray(values)
    if bits.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {bits.shape}")
    if bits.size and not np.all(np.isin(bits, (-1, 0, 1))):
        raise ValueError(f"{name} may hold only 1 (on), 0 (off) and -1 (unknown)")
    return np.ascontiguousarray(bits, dtype=np.int8)


def _band(
    band: tuple[np.ndarray, np.ndarray] | None, n: int, n_trig: int
) -> tuple[np.ndarray, np.ndarray]:
    if band is None:
        if n * n_trig > MAX_CELLS:
            raise ValueError(
                f"{n} frames × {n_trig} triggers is over {MAX_CELLS} cells: pass "
                "band= (band_from_times, or the camera's frame numbers)"
            )
        return np.zeros(n, np.int64), np.full(n, n_trig, np.int64)
    lo = np.clip(np.asarray(band[0], dtype=np.int64), 0, n_trig)
    hi = np.clip(np.asarray(band[1], dtype=np.int64), 0, n_trig)
    if lo.shape != (n,) or hi.shape != (n,):
        raise ValueError(f"band must give lo and hi for each of the {n} frames")
    hi = np.maximum(hi, lo)
    if int((hi - lo).max()) * n > MAX_CELLS:
        raise ValueError(f"band {(hi - lo).max()} wide × {n} frames: over {MAX_CELLS}")
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


def _assign(
    obs: np.ndarray,
    exp: np.ndarray,
    rep: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    mismatch: float,
    gap: float,
    stay: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Best trigger of each frame, and how much more any other would cost.

    "Any other": also a path detached from the best one up to the run's start
    or from its end, one gap cheaper (the module docstring's free ends).
    """
    n = obs.size
    width = max(int((hi - lo).max()), 1)
    fwd = np.full((n, width), np.inf, dtype=np.float32)
    sync_forward(obs, exp, rep, lo, hi, mismatch, gap, stay, fwd)
    best_t = np.empty(n, np.int64)
    best = np.empty(n)
    second = np.empty(n)
    sync_marginals(obs, exp, rep, lo, hi, mismatch, gap, stay, fwd, best_t, best,
                   second)  # fmt: skip
    # The rivals: every path with the frame off the best path, those detached
    # from it at the start or the end one gap cheaper. On a tie, best_t is not
    # one path, but every frame it decides is one no path proves.
    sync_forward_detached(obs, exp, rep, lo, hi, mismatch, gap, stay, best_t, gap,
                          fwd)  # fmt: skip
    rival = np.empty(n)
    sync_rival(obs, exp, rep, lo, hi, mismatch, gap, stay, fwd, best_t, gap, rival)
    with np.errstate(invalid="ignore"):  # inf − inf where no path reaches a frame
        gain = np.minimum(second, rival) - best
    gain[~np.isfinite(best)] = 0.0
    return best_t, gain


def _frame_number_offset(
    obs: np.ndarray, exp: np.ndarray, fn: np.ndarray, margin: float
) -> tuple[int | None, str | None]:
    """The constant c with trigger = frame number + c that the code proves.

    Each placement of the frame numbers on the triggers is scored by the bits
    that agree less those that disagree: a wrong placement scores about 0 however
    many frames it overlaps, the right one about every frame compared. Frames
    may overhang the triggers at either end (the host's trigger history began
    after the camera's first recorded frame, or its events lagged the frames
    at the end, found by the sync benchmark under load): they compare with
    nothing. The best must beat the next by ``margin`` mismatches (2·margin in
    score, as one mismatch more is one agreement less).
    """
    if fn.size == 0:
        return None, None
    base = int(fn[0])
    span = int(fn[-1]) - base + 1
    pad = FRAME_NUMBER_OVERHANG + max(0, span - exp.size)
    if span > 4 * (exp.size + FRAME_NUMBER_OVERHANG):
        return None, "frame numbers span far more frames than there were triggers"
    padded = np.concatenate([np.full(pad, -1), exp, np.full(pad, -1)])
    seen_on = np.zeros(span)
    seen_off = np.zeros(span)
    np.add.at(seen_on, fn - base, obs == 1)
    np.add.at(seen_off, fn - base, obs == 0)
    from scipy.signal import correlate

    def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return correlate(a.astype(float), b, mode="valid", method="auto")

    on, off = (padded == 1), (padded == 0)
    # Agreements less mismatches at each placement of the numbers' start.
    score = np.rint(
        overlap(on, seen_on)
        + overlap(off, seen_off)
        - overlap(off, seen_on)
        - overlap(on, seen_off)
    )
    start = int(np.argmax(score))
    others = np.delete(score, start)
    if others.size and score[start] - others.max() < 2 * margin:
        return None, (
            "the code does not prove the offset of the camera's frame numbers "
            f"(best placement only {(score[start] - others.max()) / 2:g} mismatches "
            "better than the next)"
        )
    return start - pad - base, None


def _window_proof(
    obs: np.ndarray, exp: np.ndarray, by_number: np.ndarray, window: int, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: whether the bits on each side prove its numbered trigger.

    Proven: the ``window`` frames before it, and those after it (each side
    alone, the frame in both), mismatch its numbered trigger at least
    ``margin`` less than any shift of up to ``FRAME_NUMBER_SLIP`` triggers.
    Second array: some shift fits ``margin`` better on either side (the
    counter slipped there).

    Each side alone, so that a slip between the frame and a far side cannot
    hide behind the frames on the near side: with numbers that never go back,
    a slip is for good, and one of the frame's sides holds only slipped frames.
    """
    n = obs.size
    shifts = np.arange(-FRAME_NUMBER_SLIP, FRAME_NUMBER_SLIP + 1)
    idx = np.arange(n)
    sides = [  # [a, b) frame ranges: before (with the frame), after (with it)
        (np.maximum(idx - window, 0), idx + 1),
        (idx, np.minimum(idx + window + 1, n)),
    ]
    cost = np.empty((2, shifts.size, n))
    for j, d in enumerate(shifts):
        t = by_number + d
        inside = (t >= 0) & (t < exp.size)
        e = np.where(inside, exp[np.clip(t, 0, max(exp.size - 1, 0))], -1)
        wrong = (obs >= 0) & (e >= 0) & (obs != e)
        c = np.concatenate([[0], np.cumsum(wrong)])
        for k, (a, b) in enumerate(sides):
            cost[k, j] = c[b] - c[a]
    own = cost[:, FRAME_NUMBER_SLIP]
    others = np.delete(cost, FRAME_NUMBER_SLIP, axis=1).min(axis=1)
    inside = (by_number >= 0) & (by_number < exp.size)
    proven = inside & np.all(others - own >= margin, axis=0)
    return proven, np.any(others + margin <= own, axis=0)


def _confirmed_by_code(
    by_code: np.ndarray, by_number: np.ndarray, reach: int
) -> np.ndarray:
    """Frames whose frame-number trigger the code confirms on both sides.

    A frame is trusted if the code agrees with its frame number there, or, where
    the code proved nothing, if the nearest frames the code proved before and
    after it both agree (within ``reach`` frames at either end of the run). A
    counter that slipped is thus distrusted up to where the code catches it.
    """
    n = by_code.size
    idx = np.arange(n)
    proven = by_code >= 0
    agree = proven & (by_code == by_number)
    prev = np.maximum.accumulate(np.where(proven, idx, -1))
    nxt = np.minimum.accumulate(np.where(proven, idx, n)[::-1])[::-1]
    before = np.where(prev >= 0, agree[np.maximum(prev, 0)], nxt - idx <= reach)
    after = np.where(nxt < n, agree[np.minimum(nxt, n - 1)], idx - prev <= reach)
    ok = before & after & ((prev >= 0) | (nxt < n))  # some frame proven at all
    return np.asarray(np.where(proven, agree, ok), dtype=bool)


def _drop_short_runs(trig: np.ndarray, min_run: int) -> np.ndarray:
    """Un-assign frames in runs of fewer than ``min_run`` consecutive assigned ones.

    A frame proven alone among undetermined neighbours sits in a stretch where
    drops crowd together; its proof rests on that stretch's tie-breaks.
    """
    assigned = np.concatenate([[False], trig >= 0, [False]])
    edges = np.flatnonzero(np.diff(assigned.astype(np.int8)))
    out = trig.copy()
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < min_run:
            out[start:stop] = -1
    return out


def _local_residual_check(
    obs: np.ndarray, exp: np.ndarray, trig: np.ndarray, limit: float, window: int
) -> np.ndarray:
    """Un-assign frames whose neighbourhood along the path mismatches too often."""
    assigned = trig >= 0
    x = np.where(assigned, exp[np.maximum(trig, 0)], -1)
    compared = assigned & (obs >= 0) & (x >= 0)
    wrong = compared & (obs != x)
    c = np.concatenate([[0], np.cumsum(compared)])
    w = np.concatenate([[0], np.cumsum(wrong)])
    idx = np.arange(trig.size)
    a = np.maximum(idx - window, 0)
    b = np.minimum(idx + window + 1, trig.size)
    n_c, n_w = c[b] - c[a], w[b] - w[a]
    bad = n_w > limit * np.maximum(n_c, 1)
    return np.where(bad, -1, trig)


def _record(
    method: str,
    obs: np.ndarray,
    rep: np.ndarray,
    exp: np.ndarray,
    trig: np.ndarray,
    gain: np.ndarray,
    margin: float,
    offset: int | None,
    disagreements: int | None,
    notes: list[str],
    min_fraction: float,
) -> AlignmentRecord:
    n = trig.size
    assigned = trig >= 0
    n_aligned = int(assigned.sum())
    x = np.where(assigned, exp[np.maximum(trig, 0)] if exp.size else -1, -1)
    compared = assigned & (obs >= 0) & (x >= 0)
    n_mismatched = int((compared & (obs != x)).sum())
    both = assigned[1:] & assigned[:-1]  # consecutive frames, both aligned
    steps = np.diff(trig)[both]
    # Triggers with no frame: between aligned frames, the trigger step minus the
    # new exposures the frames in between (not flagged repeats) account for.
    where = np.flatnonzero(assigned)
    fresh = np.concatenate([[0], np.cumsum(~rep)])
    shown = fresh[where[1:] + 1] - fresh[where[:-1] + 1]
    n_dropped = int(np.clip(np.diff(trig[where]) - shown, 0, None).sum())
    n_compared = int(compared.sum())
    fraction = n_mismatched / n_compared if n_compared else float("nan")
    if n_aligned == 0:
        verdict = "not_determined"
    elif n_aligned >= min_fraction * n:
        verdict = "aligned"
    else:
        verdict = "partial"
    return AlignmentRecord(
        method=method,
        verdict=verdict,
        n_frames=n,
        n_triggers=int(exp.size),
        n_aligned=n_aligned,
        n_not_determined=n - n_aligned,
        n_repeats=int((steps == 0).sum()),
        n_dropped_triggers=n_dropped,
        n_compared=n_compared,
        n_mismatched=n_mismatched,
        mismatch_fraction=float(fraction),
        margin=float(margin),
        min_margin=float(gain[assigned].min()) if n_aligned else float("inf"),
        frame_number_offset=offset,
        frame_number_disagreements=disagreements,
        notes=tuple(notes),
    )
