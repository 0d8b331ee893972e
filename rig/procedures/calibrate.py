"""Calibration procedures: collect measurements from the board (or the simulated
rig) through a running session and fit them with ``calibration``. Used by
``neurorig calibrate``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from calibration import (
    CalibrationError,
    fit_camera,
    fit_gain,
    fit_stimulator,
    fit_timing,
)
from firmware_bridge import StimPulse
from firmware_bridge.protocol import LedFlashed, StimDelivered

LED_CORNER = (slice(12, 28), slice(-28, -12))  # where the simulated rig's LED is


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


def calibrate_timing(session, *, n_events=30, led_s=0.04, rig_id="rig-1"):
    """Flash the LED at spread phases; find the first frame showing each flash.

    Which trigger exposed each frame: from the camera's own frame numbers where
    it gives them (trigger count = frame number + a constant, so a dropped
    frame cannot shift the frames after it), else from arrival times
    (``FrameClock.match``). Either way the constant, or the arrival-time
    guess, may be whole frames off on a busy host; ``fit_timing`` brings the
    delay into its physical window by whole periods, so that does not matter.
    A flash whose first lit frame follows a gap in the frame numbers (the
    frame before it was lost) is left out: the frame that saw the flash first
    may be the lost one.
    """
    frames: list[tuple[int, float, int | None]] = []  # index, LED, frame number
    leds: list[int] = []
    region = _led_slices(session)

    def on_frame(frame, host_time, index):
        number = getattr(session.camera, "frame_number", None)  # camera thread
        frames.append((index, float(frame[region].mean()), number))

    def on_batch(decoded):
        leds.extend(
            m.sample_index for m in decoded.messages if isinstance(m, LedFlashed)
        )

    session.events.frame_captured.connect(on_frame)
    session.device.add_listener(on_batch)
    period_s = 1.0 / session.camera_rate_hz
    try:
        for k in range(n_events):
            # Flash at evenly spread phases of the frame period (stratified, not
            # random): the mean first-frame lag then converges fast.
            time.sleep(0.15)
            last_trigger = session.frame_clock.latest_trigger()[2]
            phase = (k + 0.5) / n_events * period_s
            due = last_trigger + period_s * np.ceil(
                (time.monotonic() - last_trigger) / period_s
            )
            time.sleep(max(0.0, due + phase - time.monotonic()))
            session.device.led_pulse(led_s)
        time.sleep(0.3)
    finally:
        session.events.frame_captured.disconnect(on_frame)
        session.device.remove_listener(on_batch)
    period = session.sample_rate_hz / session.camera_rate_hz
    samples, after_gap = _frame_samples(session.frame_clock, frames)
    lit = np.array([brightness > 180 for _, brightness, _ in frames])
    # The first frame of each run of lit frames, and the flash it shows.
    starts = np.flatnonzero(lit & ~np.r_[False, lit[:-1]])
    starts = starts[np.isfinite(samples[starts]) & ~after_gap[starts]]
    onsets, firsts = pair_runs_with_flashes(
        samples[starts], np.array(sorted(leds), dtype=float), period
    )
    return fit_timing(
        np.array(onsets),
        np.array(firsts),
        frame_period_samples=period,
        fs_hz=session.sample_rate_hz,
        rig_id=rig_id,
    )


def pair_runs_with_flashes(
    run_samples: np.ndarray, onsets: np.ndarray, period: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each lit run's first frame (its trigger sample as stamped) with the
    LED flash it shows: ``(onsets, firsts)`` of the pairs.

    Stamps may all be whole frames off (the host's guess of the trigger), so
    a run is not paired with the nearest flash: the lag g (run − flash) that
    the most runs share to within a period is found first (flashes are some
    ten frames apart, so only the true lag, whole frames off as every stamp
    is, gathers them), and each run is paired with the flash whose lag is
    within a period of g. A flash is used once.
    """
    runs = np.asarray(run_samples, dtype=float)
    leds = np.asarray(onsets, dtype=float)
    if runs.size == 0 or leds.size == 0:
        return np.zeros(0), np.zeros(0)
    candidates = (runs[:, None] - leds[None, :]).ravel()
    lag = runs[:, None] - leds[None, :]  # (run, flash)
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


def _led_slices(session) -> tuple[slice, slice]:
    """Where the LED is in the image: the rig file's region, else the
    simulated rig's corner."""
    region = getattr(getattr(session, "rig", None), "led_region_px", None)
    if region is None:
        return LED_CORNER
    top, bottom, left, right = region
    return slice(top, bottom), slice(left, right)


def _frame_samples(
    clock, frames: list[tuple[int, float, int | None]]
) -> tuple[np.ndarray, np.ndarray]:
    """Trigger sample of each frame (nan: unknown), and whether the camera's
    frame numbers show a lost frame just before it."""
    stamps, _ = clock.match()
    by_index = {s.frame_index: s for s in stamps}
    numbers = [n for _, _, n in frames]
    usable = bool(frames) and all(n is not None for n in numbers)
    if usable:
        fn = np.array(numbers, dtype=np.int64)
        usable = bool(np.all(np.diff(fn) > 0))
    if not usable:  # arrival times only
        samples = np.array(
            [
                np.nan
                if by_index.get(i) is None or by_index[i].sample is None
                else by_index[i].sample
                for i, _, _ in frames
            ],
            dtype=float,
        )
        return samples, np.zeros(len(frames), dtype=bool)
    # trigger count = frame number + c: c from every frame the arrival times
    # matched (the median: a few misplaced ones do not move it).
    guesses = [
        by_index[i].trigger_count - n
        for (i, _, _), n in zip(frames, fn.tolist(), strict=True)
        if by_index.get(i) is not None and by_index[i].trigger_count is not None
    ]
    sample_of = {count: smp for smp, count, _ in clock.triggers()}
    if not guesses:
        return np.full(len(frames), np.nan), np.zeros(len(frames), dtype=bool)
    c = round(float(np.median(guesses)))
    samples = np.array([sample_of.get(n + c, np.nan) for n in fn.tolist()], float)
    return samples, np.r_[False, np.diff(fn) > 1]


def calibrate_camera(
    session, *, n_frames=12, squares=(9, 6), square_mm=10.0, rig_id="rig-1", seed=0
):
    """Frames of a checkerboard on the raceway (moved between frames)."""
    # The simulated camera can lay a board on its raceway for us; on a real rig
    # someone moves a printed one under the camera.
    show_checkerboard = getattr(session.camera, "show_checkerboard", None)
    if show_checkerboard is not None:
        rng = np.random.default_rng(seed)
        poses = [
            ((rng.uniform(-5, 90), rng.uniform(-60, -5)), rng.uniform(-0.3, 0.3))
            for _ in range(n_frames)
        ]
        show_checkerboard(squares, square_mm, poses)
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
        if show_checkerboard is not None:
            session.camera.target = None
    return fit_camera(
        collected, squares=squares, square_size_mm=square_mm, rig_id=rig_id
    )


PROCEDURES = {
    "gain": calibrate_gain,
    "stimulator": calibrate_stimulator,
    "timing": calibrate_timing,
    "camera": calibrate_camera,
}
