"""Calibration procedures: collect measurements from the board (or the simulated
rig) through a running session and fit them with ``calibration``. Used by
``neurorig calibrate`` (docs/calibration.md).
"""

from __future__ import annotations

import itertools
import math
import threading
import time

import numpy as np

from analysis.sync_code import classify_led, led_brightness, led_states_from_flashes
from calibration import (
    CalibrationError,
    fit_camera,
    fit_gain,
    fit_led_region,
    fit_stimulator,
    fit_timing_from_frames,
)
from firmware_bridge import StimPulse
from firmware_bridge.errors import DeviceError
from firmware_bridge.protocol import LedFlashed, StimDelivered

# The LED region calibration's on and off stretches, s: long beside how far a
# loaded host may stamp a frame from its trigger (issue 16 saw 100 ms), and
# random, so that nothing else in view (a worm, a light blinking on its own
# schedule) keeps in step with them. A frame this close to an LED edge, as
# stamped, does not count.
LED_STRETCH_S = (0.4, 0.9)
LED_EDGE_MARGIN_S = 0.12
LED_MAX_FRAMES = 240  # ~75 MB of 640×480 frames; more add little


def calibrate_gain(
    session, *, amplitude_uvpp=100.0, frequency_hz=1000, seconds=1.0, rig_id="rig-1"
):
    """Inject a known sine at every amplifier input; fit µV per count per channel."""
    device = session.device
    channels = list(range(session.n_channels))
    device.test_signal(
        enable=True,
        channels=channels,
        amplitude_vpp=amplitude_uvpp * 1e-6,
        frequency_hz=frequency_hz,
    )
    ring = session.acquisition.ring
    n = int(seconds * session.sample_rate_hz)
    try:
        time.sleep(0.1)  # let the signal settle in the stream
        start = ring.end
        if start is None or not ring.wait_for_end(start + n, timeout_s=seconds + 5.0):
            raise CalibrationError(
                f"gain: the board streamed {(ring.end or 0) - (start or 0)} of the "
                f"{n} samples needed in {seconds + 5.0:.0f} s; is it connected "
                "and streaming?"
            )
        counts = ring.read(start, n)
    finally:
        device.test_signal(enable=False)
    return fit_gain(
        counts,
        fs_hz=session.sample_rate_hz,
        amplitude_uvpp=amplitude_uvpp,
        frequency_hz=frequency_hz,
        rig_id=rig_id,
    )


def calibrate_stimulator(
    session,
    *,
    amplitudes_vpp=None,
    durations_s=(2e-3, 5e-3),
    interval_s=0.25,
    rig_id="rig-1",
):
    """Pulse over the working range; fit the stimulus monitor's readings."""
    amplitudes = (
        amplitudes_vpp if amplitudes_vpp is not None else np.arange(1.0, 6.01, 0.5)
    )
    delivered: list[tuple[float, float]] = []
    done = threading.Event()

    def on_batch(decoded):
        for m in decoded.messages:
            if isinstance(m, StimDelivered):
                delivered.append((m.commanded_mvpp / 1000, m.delivered_mvpp / 1000))
        if len(delivered) >= len(amplitudes) * len(durations_s):
            done.set()

    session.device.add_listener(on_batch)
    try:
        session.device.arm()
        for duration in durations_s:
            for amplitude in amplitudes:
                # Straight to the board: a calibration measures raw commands.
                session.device.stimulate(StimPulse(float(amplitude), duration))
                time.sleep(interval_s)
        done.wait(2.0)
    finally:
        session.device.disarm()
        session.device.remove_listener(on_batch)
    commanded, measured = zip(*delivered, strict=True)
    return fit_stimulator(commanded, measured, rig_id=rig_id)


def calibrate_timing(
    session,
    *,
    n_events=30,
    max_events=240,
    led_s=0.04,
    accuracy_frames=0.05,
    required_accuracy_frames=0.1,
    seed=0,
    rig_id="rig-1",
):
    """Flash the LED at spread phases; find the first frame showing each flash.

    Which trigger exposed each frame: from the camera's own frame numbers where
    it gives them (trigger count = frame number + a constant, so a dropped
    frame cannot shift the frames after it), else from arrival times
    (``FrameClock.match``). Either way the constant, or the arrival-time
    guess, may be whole frames off on a busy host; ``fit_timing`` brings the
    delay into its physical window by whole periods, so that does not matter.
    A flash whose first lit frame follows a gap in the frame numbers (the
    frame before it was lost) is left out: the frame that saw the flash first
    may be the lost one (``calibration.timing.first_lit_frames``).

    ``n_events`` flashes first, at phases spread over the frame period; then,
    while the delay range the flashes allow is wider than ±``accuracy_frames``
    of a period, rounds of ``TIMING_ROUND`` more, aimed into that range (a
    loaded host lands its flashes where it can, and a lost frame costs its
    flash), up to ``max_events``. A range still wider than
    ±``required_accuracy_frames`` is refused ("not determined": CalibrationError)
    rather than its middle given as the delay.

    The LED is read where the session says it shows (``led_region_px``: the
    LED region calibration, else the rig file; the simulated rig knows its own).
    """
    region = _led_region(session, "timing")
    frames: list[tuple[int, float, int | None]] = []  # index, LED, frame number
    leds: list[int] = []
    aims: list[float] = []  # each flash's aimed phase, s after a trigger

    def on_frame(frame, host_time, index):
        number = getattr(session.camera, "frame_number", None)  # camera thread
        frames.append((index, float(led_brightness(frame[None], region)[0]), number))

    def on_batch(decoded):
        leds.extend(
            m.sample_index for m in decoded.messages if isinstance(m, LedFlashed)
        )

    period_s = 1.0 / session.camera_rate_hz
    period = session.sample_rate_hz / session.camera_rate_hz

    def flash(phase_s):
        time.sleep(0.15)
        last_trigger = session.frame_clock.latest_trigger()[2]
        due = last_trigger + period_s * np.ceil(
            (time.monotonic() - last_trigger) / period_s
        )
        time.sleep(max(0.0, due + phase_s - time.monotonic()))
        session.device.led_pulse(led_s)
        aims.append(phase_s)

    rng = np.random.default_rng(seed)
    session.events.frame_captured.connect(on_frame)
    session.device.add_listener(on_batch)
    try:
        # Evenly spread phases of the frame period (stratified, not random).
        phases = (np.arange(n_events) + 0.5) / n_events * period_s
        while True:
            for phase in phases:
                flash(float(phase))
            time.sleep(0.3)  # the last frames and events arrive
            fit = _timing_so_far(session, list(frames), list(leds), rig_id)
            accuracy = None if fit is None else fit.accuracy_samples
            if accuracy is not None and accuracy <= accuracy_frames * period:
                break
            if len(aims) >= max_events:
                break
            n = min(TIMING_ROUND, max_events - len(aims))
            phases = _aim_into_range(session, fit, aims, list(leds), rng, n)
    finally:
        session.events.frame_captured.disconnect(on_frame)
        session.device.remove_listener(on_batch)
    return _timing_so_far(
        session, frames, leds, rig_id,
        required_accuracy_samples=required_accuracy_frames * period,
    )  # fmt: skip


TIMING_ROUND = 10  # flashes per round after the first n_events


def _timing_so_far(session, frames, leds, rig_id, *, required_accuracy_samples=None):
    """The timing fit of the flashes so far: None while too few are usable,
    unless an accuracy is required (then CalibrationError)."""
    period = session.sample_rate_hz / session.camera_rate_hz
    samples, numbers = _frame_samples(session.frame_clock, frames)
    states = classify_led(np.array([contrast for _, contrast, _ in frames])).bits
    try:
        return fit_timing_from_frames(
            states, samples, numbers, np.array(leds, dtype=float),
            frame_period_samples=period, fs_hz=session.sample_rate_hz,
            rig_id=rig_id, required_accuracy_samples=required_accuracy_samples,
        )  # fmt: skip
    except CalibrationError:
        if required_accuracy_samples is not None:
            raise
        return None


def _aim_into_range(session, fit, aims, leds, rng, n):
    """``n`` phases (s after a trigger) to flash at next: into the delay range
    the flashes so far allow (where a flash's phase narrows it), corrected by
    how far the host's flashes have landed from where they were aimed; spread
    over the whole period while there is no range yet."""
    period_s = 1.0 / session.camera_rate_hz
    if fit is None or fit.accuracy_samples is None:
        return rng.uniform(0, period_s, n)
    fs = session.sample_rate_hz
    period = fs / session.camera_rate_hz
    # Each flash's landed phase: its onset after the trigger before it (the
    # board's samples). The host's aim misses by a latency of its own.
    triggers = np.array([smp for smp, _, _ in session.frame_clock.triggers()], float)
    miss_s = 0.0
    if len(leds) == len(aims) and triggers.size:
        onsets = np.array(leds, dtype=float)
        at = np.maximum(np.searchsorted(triggers, onsets, "right") - 1, 0)
        landed = (onsets - triggers[at]) / period
        angle = 2 * np.pi * (landed - np.array(aims) / period_s)
        miss_s = float(np.angle(np.mean(np.exp(1j * angle)))) / (2 * np.pi) * period_s
    # A flash u samples after its trigger gives the bracket [u, u + P) (modulo
    # whole periods): it narrows the range when u falls inside it.
    low = fit.offset_samples - fit.accuracy_samples
    u = low + rng.uniform(0.1, 0.9, n) * 2 * fit.accuracy_samples
    return np.mod(u / fs - miss_s, period_s)


def _frame_samples(
    clock, frames: list[tuple[int, float, int | None]]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Trigger sample of each frame (nan: unknown), and the camera's frame
    numbers (None where the camera gives none: the samples are then the
    arrival times' guess).

    trigger count = frame number + c, with c from every frame the arrival
    times matched (the median: a few misplaced ones do not move it). Where
    the numbers start again (the camera restarted its count), c is found
    afresh, and the numbers returned are moved on past a gap so that no run
    spans the restart.
    """
    stamps, _ = clock.match()
    by_index = {s.frame_index: s for s in stamps}
    numbers = [n for _, _, n in frames]
    if not frames or any(n is None for n in numbers):  # arrival times only
        samples = np.array(
            [
                np.nan
                if by_index.get(i) is None or by_index[i].sample is None
                else by_index[i].sample
                for i, _, _ in frames
            ],
            dtype=float,
        )
        return samples, None
    fn = np.array(numbers, dtype=np.int64)
    restarts = np.flatnonzero(np.diff(fn) < 0) + 1  # a repeat is a duplicate
    sample_of = {count: smp for smp, count, _ in clock.triggers()}
    samples = np.full(fn.size, np.nan)
    moved = fn.copy()
    bounds = [0, *restarts.tolist(), fn.size]
    for lo, hi in itertools.pairwise(bounds):
        if lo > 0:  # past the previous segment, with a gap
            moved[lo:hi] += moved[lo - 1] - fn[lo] + 2
        guesses = [
            by_index[i].trigger_count - n
            for (i, _, _), n in zip(frames[lo:hi], fn[lo:hi].tolist(), strict=True)
            if by_index.get(i) is not None and by_index[i].trigger_count is not None
        ]
        if guesses:
            c = round(float(np.median(guesses)))
            samples[lo:hi] = [sample_of.get(n + c, np.nan) for n in fn[lo:hi].tolist()]
    return samples, moved


def calibrate_led_region(session, *, seconds=10.0, seed=0, rig_id="rig-1"):
    """Switch the LED on and off in long random stretches while filming; find
    where in the image it shows (``calibration.fit_led_region``).

    Each frame's LED state comes from the board's LED_FLASHED events (onset
    and duration in device samples) at the trigger sample the frame clock
    stamps it with, plus the timing calibration's exposure delay if there is
    one. Frames stamped within ``LED_EDGE_MARGIN_S`` of an edge are left out
    (-1), so a frame stamped a few triggers off under load cannot teach the
    wrong state.
    """
    if session.camera is None:
        raise CalibrationError("led_region: needs a camera (--camera)")
    fs = session.sample_rate_hz
    timing = session.calibrations.get("timing") if session.calibrations else None
    delay = float(timing.offset_samples) if timing is not None else 0.0
    rng = np.random.default_rng(seed)
    keep_every = max(1, math.ceil(seconds * session.camera_rate_hz / LED_MAX_FRAMES))
    frames: list[tuple[int, np.ndarray]] = []  # frame-clock index, image
    flashes: list[tuple[int, int]] = []  # onset sample, duration µs

    def on_frame(frame, host_time, index):
        if index % keep_every == 0:
            frames.append((index, frame))

    def on_batch(decoded):
        flashes.extend(
            (m.sample_index, m.duration_us)
            for m in decoded.messages
            if isinstance(m, LedFlashed)
        )

    session.events.frame_captured.connect(on_frame)
    session.device.add_listener(on_batch)
    try:
        end = time.monotonic() + seconds
        lit = bool(rng.integers(2))
        while time.monotonic() < end:
            stretch_s = float(rng.uniform(*LED_STRETCH_S))
            if lit:  # the board keeps it on; the host need not be on time
                session.device.led_pulse(stretch_s)
            time.sleep(stretch_s)
            lit = not lit
        time.sleep(0.3)  # the last frames and events arrive
    except DeviceError as exc:
        raise CalibrationError(f"led_region: the board stopped: {exc}") from None
    finally:
        session.events.frame_captured.disconnect(on_frame)
        session.device.remove_listener(on_batch)
    stamps, _ = session.frame_clock.match()
    sample_of = {s.frame_index: s.sample for s in stamps}
    known = [(i, f) for i, f in frames if sample_of.get(i) is not None]
    if not known or not flashes:
        raise CalibrationError(
            f"led_region: {len(known)} frames stamped with a trigger and "
            f"{len(flashes)} LED flashes reported in {seconds:g} s; is the "
            "camera triggered by the board, and the LED wired to it?"
        )
    onsets, durations_us = (
        np.array(v, dtype=float) for v in zip(*flashes, strict=True)
    )
    states = led_states_from_flashes(
        np.array([sample_of[i] for i, _ in known], dtype=float),
        1.0,
        onsets,
        durations_us * fs / 1e6,
        delay_samples=delay,
        margin_samples=LED_EDGE_MARGIN_S * fs,
    )
    return fit_led_region(np.stack([f for _, f in known]), states, rig_id=rig_id)


def _led_region(session, kind: str) -> tuple[int, int, int, int]:
    region = session.led_region_px
    if region is None:
        raise CalibrationError(
            f"{kind}: where the LED shows in the image is not known: run "
            "`neurorig calibrate led-region` into the same --out folder first, "
            "or give [camera] led_region_px in the rig file"
        )
    return region


def calibrate_camera(
    session, *, n_frames=12, squares=(9, 6), square_mm=10.0, rig_id="rig-1"
):
    """Frames of a checkerboard on the raceway, moved between frames (by
    someone on a real rig; the simulated rig shows one with
    ``target=checkerboard``, as ``neurorig calibrate camera --sim`` starts it)."""
    collected: list[np.ndarray] = []
    last = [0.0]

    def on_frame(frame, host_time, index):
        if host_time - last[0] > 0.1 and len(collected) < n_frames:  # distinct poses
            collected.append(frame)
            last[0] = host_time

    session.events.frame_captured.connect(on_frame)
    try:
        deadline = time.monotonic() + 10 + n_frames * 0.2
        while len(collected) < n_frames and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        session.events.frame_captured.disconnect(on_frame)
    return fit_camera(
        collected, squares=squares, square_size_mm=square_mm, rig_id=rig_id
    )


PROCEDURES = {
    "gain": calibrate_gain,
    "stimulator": calibrate_stimulator,
    "timing": calibrate_timing,
    "camera": calibrate_camera,
    "led-region": calibrate_led_region,
}
