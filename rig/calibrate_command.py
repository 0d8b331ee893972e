"""Calibration procedures: collect measurements from the board (or the simulated
rig) and fit them with ``calibration``. Used by ``neurorig calibrate``.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import numpy as np

from calibration import (
    CalibrationError,
    fit_camera,
    fit_gain,
    fit_stimulator,
    fit_timing,
    save_calibration,
)
from firmware_bridge import StimPulse
from firmware_bridge.protocol import LedFlashed, StimDelivered
from rig.cli._common import board_url, fail, out_folder_problem

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
    """Flash the LED at spread phases; find the first frame showing each flash."""
    frames: list[tuple[int, float]] = []  # frame-clock index, LED brightness
    leds: list[int] = []

    def on_frame(frame, host_time, index):
        frames.append((index, float(frame[LED_CORNER].mean())))

    def on_batch(decoded):
        leds.extend(
            m.sample_index for m in decoded.messages if isinstance(m, LedFlashed)
        )

    session.frame_listeners.append(on_frame)
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
        session.frame_listeners.remove(on_frame)
        session.device.remove_listener(on_batch)
    stamps, _ = session.frame_clock.match()
    sample_of = {s.frame_index: s.sample for s in stamps}
    lit = np.array([brightness > 180 for _, brightness in frames])
    samples = np.array(
        [np.nan if sample_of.get(i) is None else sample_of[i] for i, _ in frames]
    )
    period = session.sample_rate_hz / session.camera_rate_hz
    firsts, onsets = [], []
    for onset in leds:
        after = np.flatnonzero(
            lit & (samples >= onset - period) & (samples < onset + 2 * period)
        )
        if after.size:
            firsts.append(samples[after[0]])
            onsets.append(onset)
    return fit_timing(
        np.array(onsets),
        np.array(firsts),
        frame_period_samples=period,
        fs_hz=session.sample_rate_hz,
        rig_id=rig_id,
    )


def calibrate_camera(
    session, *, n_frames=12, squares=(9, 6), square_mm=10.0, rig_id="rig-1", seed=0
):
    """Frames of a checkerboard on the raceway (moved between frames)."""
    rig = getattr(session.device, "sim_rig", None)
    if rig is not None:  # the simulated rig lays a board on its raceway for us
        from firmware_bridge.sim.targets import render_checkerboard

        rng = np.random.default_rng(seed)
        poses = [
            ((rng.uniform(-5, 90), rng.uniform(-60, -5)), rng.uniform(-0.3, 0.3))
            for _ in range(n_frames)
        ]
        rig.camera().target = lambda k: render_checkerboard(
            rig.optics,
            squares=squares,
            square_mm=square_mm,
            offset_mm=poses[k % n_frames][0],
            angle_rad=poses[k % n_frames][1],
            noise_seed=k,
        )
    collected: list[np.ndarray] = []
    last = [0.0]

    def on_frame(frame, host_time, index):
        if host_time - last[0] > 0.1 and len(collected) < n_frames:  # distinct poses
            collected.append(frame)
            last[0] = host_time

    session.frame_listeners.append(on_frame)
    try:
        deadline = time.monotonic() + 10 + n_frames * 0.2
        while len(collected) < n_frames and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        session.frame_listeners.remove(on_frame)
        if rig is not None:
            rig.camera().target = None
    return fit_camera(
        collected, squares=squares, square_size_mm=square_mm, rig_id=rig_id
    )


PROCEDURES = {
    "gain": calibrate_gain,
    "stimulator": calibrate_stimulator,
    "timing": calibrate_timing,
    "camera": calibrate_camera,
}


def run_calibrate(args: argparse.Namespace) -> int:
    """Open the board, run the procedure, write the calibration file."""
    from firmware_bridge.device import Device
    from firmware_bridge.errors import DeviceError
    from rig.core.camera import CameraError, open_camera
    from rig.core.session import Session

    needs_camera = args.kind in ("camera", "timing")
    problem = out_folder_problem(args.out, "--out")
    if problem is not None:  # before the procedure, not after it
        return fail(problem)
    try:
        device = Device.open(board_url(args))
    except (DeviceError, OSError, ValueError) as exc:
        return fail(f"cannot connect to the board: {exc}")
    try:
        camera = None
        if needs_camera:
            spec = args.camera or ("sim" if args.sim else None)
            if spec is None:
                device.close()
                return fail(
                    f"{args.kind} calibration needs a camera: give --camera INDEX|FILE"
                )
            camera = open_camera(spec, device=device)
    except CameraError as exc:
        device.close()
        return fail(str(exc))
    session = Session(device, camera=camera)
    try:
        session.start()
        time.sleep(0.3)
        calibration: Any = PROCEDURES[args.kind](session, rig_id=args.rig_id)
    except (CalibrationError, DeviceError) as exc:
        return fail(f"{args.kind} calibration failed: {exc}")
    finally:
        session.close()
    path = save_calibration(calibration, args.out)
    print(f"{args.kind} calibration written to {path}")
    for key in (
        "px_per_mm",
        "uv_per_count",
        "coefficients",
        "offset_samples",
        "offset_s",
        "jitter_samples",
        "residual_rms",
        "reprojection_error_px",
    ):
        if hasattr(calibration, key):
            print(f"  {key}: {getattr(calibration, key)}")
    return 0
