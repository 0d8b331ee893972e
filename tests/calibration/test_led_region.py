"""The LED region calibration, on the simulated camera and on independent frames.

The simulated rig's test drives the whole optical sync end to end over its
pseudo-terminal: LED code commanded as LED_PULSE, expected bits from the
board's LED_FLASHED and CAMERA_TRIGGERED events, the LED found and read in the
simulated camera's frames, and every frame aligned to the trigger it shows.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from analysis.sync_code import (
    align_frames_to_triggers,
    classify_led,
    led_brightness,
    led_states_from_flashes,
    make_sync_code,
    repeated_frames,
)
from calibration import (
    CalibrationError,
    LedRegionCalibration,
    fit_led_region,
    load_led_region,
    save_calibration,
)


def synthetic_frames(
    seed, *, n=160, led_box=(70, 79, 20, 33), decoy=True, blob=True, led=True
):
    """Frames from a generator that shares nothing with the simulated camera.

    A 120×160 image: a lighting gradient, noise, the LED (a lit box of any
    size), a bright worm-like ellipse wandering next to it, a second light
    blinking on its own schedule, and a per-frame gain (auto-exposure).
    """
    rng = np.random.default_rng(seed)
    h, w = 120, 160
    states = rng.integers(0, 2, n)
    rows, cols = np.mgrid[0:h, 0:w].astype(float)
    base = 40 + 30 * cols / w + 10 * rows / h
    frames = np.empty((n, h, w))
    top, bottom, left, right = led_box
    for k in range(n):
        img = base + rng.normal(0, 4, (h, w))
        if blob:  # the worm passes along the LED's side, 3 px away
            cy = bottom + 3 + 8 + 4 * np.sin(k / 7)
            cx = left + 40 * np.sin(k / 11)
            img += 90 * (((rows - cy) / 8) ** 2 + ((cols - cx) / 25) ** 2 < 1)
        if decoy and rng.random() < 0.5:
            img[10:16, 130:140] += 150
        if led and states[k]:
            img[top:bottom, left:right] += 140
        frames[k] = img * rng.uniform(0.7, 1.3)
    return np.clip(frames, 0, 255).astype(np.uint8), states


def _iou(a, b):
    t, bo = max(a[0], b[0]), min(a[1], b[1])
    le, r = max(a[2], b[2]), min(a[3], b[3])
    inter = max(0, bo - t) * max(0, r - le)
    area = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2])
    return inter / (area - inter)


@pytest.mark.parametrize(
    "seed, box",
    [(0, (70, 79, 20, 33)), (1, (5, 9, 100, 104)), (2, (100, 118, 140, 158))],
)
def test_led_found_among_worm_decoy_noise_and_gain(seed, box):
    frames, states = synthetic_frames(seed, led_box=box)
    cal = fit_led_region(frames, states, rig_id="bench")
    assert _iou(cal.region, box) > 0.7, cal.region
    assert cal.residual_rms == 0.0
    assert cal.image_size_px == [160, 120]
    assert cal.correlation > 0.8
    reading = classify_led(led_brightness(frames, cal.region))
    np.testing.assert_array_equal(reading.bits, states)


def test_unknown_states_are_left_out_of_the_fit():
    frames, states = synthetic_frames(3)
    states = states.astype(np.int8)
    states[::4] = -1
    cal = fit_led_region(frames, states, rig_id="bench")
    assert _iou(cal.region, (70, 79, 20, 33)) > 0.7
    assert cal.n_measurements == int((states >= 0).sum())


def test_no_led_in_view_is_refused():
    frames, states = synthetic_frames(4, led=False)
    with pytest.raises(CalibrationError, match="no pixel follows the LED"):
        fit_led_region(frames, states, rig_id="bench")


def test_lighting_that_follows_the_led_is_refused():
    frames, states = synthetic_frames(5, blob=False, decoy=False, led=False)
    lamp = frames.astype(float)
    lamp[states == 1, :, :80] += 60  # half the scene brightens with the LED
    with pytest.raises(CalibrationError, match="cover"):
        fit_led_region(np.clip(lamp, 0, 255).astype(np.uint8), states, rig_id="b")


def test_too_few_lit_frames_are_refused():
    frames, states = synthetic_frames(6)
    states[:] = 0
    states[:2] = 1
    with pytest.raises(CalibrationError, match="got 2 on"):
        fit_led_region(frames, states, rig_id="bench")


def test_led_region_file_round_trip(tmp_path):
    frames, states = synthetic_frames(7)
    cal = fit_led_region(frames, states, rig_id="bench")
    path = save_calibration(cal, tmp_path)
    assert path.name == "led_region.json"
    again = load_led_region(path)
    assert again == cal
    assert isinstance(again, LedRegionCalibration)
    path.write_text(path.read_text().replace('"led_region"', '"timing"'))
    with pytest.raises(CalibrationError, match="expected 'led_region'"):
        load_led_region(path)


# ------------------------------------------------ the real simulated camera


def _run_sim_code(seed, n_slots):
    """Command a sync code on the simulated rig; collect frames and events."""
    from firmware_bridge.device import Device
    from firmware_bridge.link import SerialLink
    from firmware_bridge.protocol import CameraTriggered, LedFlashed
    from firmware_bridge.sim import SimulatedRig
    from firmware_bridge.sim.camera import EXPOSURE_DELAY_S
    from firmware_bridge.transport import open_port

    code = make_sync_code(n_slots, seed=seed)
    fps = 60.0
    with SimulatedRig(seed=seed) as rig:
        camera = rig.camera()
        frames = []
        camera.start(lambda frame, t: frames.append(frame))
        link = SerialLink(open_port(rig.port))
        device = Device(link)
        messages = []
        device.add_listener(lambda batch: messages.extend(batch.messages))
        link.start()
        try:
            device.connect(timeout_s=2.0)
            device.start_heartbeat()
            device.set_camera_trigger(fps)
            start = time.monotonic() + 0.05
            for k, bit in enumerate(code.bits):
                time.sleep(max(0.0, start + k / fps - time.monotonic()))
                if bit:
                    device.led_pulse(code.pulse_periods / fps)
            time.sleep(0.1)
            device.set_camera_trigger(0)
            time.sleep(0.1)
        finally:
            camera.stop()
            device.close()
        fs = rig.board.sample_rate_hz
        truth_counts = np.array([count for count, _, _ in camera.truth])
        truth_exposed = np.array([sample for _, sample, _ in camera.truth])
    triggers = sorted(
        (m.trigger_count, m.sample_index)
        for m in messages
        if isinstance(m, CameraTriggered)
    )
    flashes = [
        (m.sample_index, m.duration_us) for m in messages if isinstance(m, LedFlashed)
    ]
    counts, trigger_samples = (np.array(v) for v in zip(*triggers, strict=True))
    assert np.array_equal(counts, np.arange(counts.size))  # none lost on the wire
    onsets = np.array([f[0] for f in flashes])
    durations = np.array([f[1] for f in flashes]) * fs / 1e6
    return dict(
        frames=np.stack(frames),
        truth_counts=truth_counts,
        truth_exposed=truth_exposed,
        trigger_samples=trigger_samples,
        onsets=onsets,
        durations=durations,
        delay=round(EXPOSURE_DELAY_S * fs),
    )


def test_optical_sync_end_to_end_on_the_simulated_rig():
    run = _run_sim_code(seed=3, n_slots=150)
    frames = run["frames"]
    assert len(frames) == run["truth_counts"].size > 100
    # Calibrate: the LED's state at each delivered frame's exposure.
    seen = led_states_from_flashes(
        run["truth_exposed"], 1, run["onsets"], run["durations"]
    )
    cal = fit_led_region(frames, seen, rig_id="sim")
    h, w = frames.shape[1:]
    # The simulated camera draws its LED at rows 12–28, columns w−28 … w−12.
    assert _iou(cal.region, (12, 28, w - 28, w - 12)) > 0.8, cal.region
    # Align: expected bits from the board's events, observed from the frames.
    expected = led_states_from_flashes(
        run["trigger_samples"],
        1,
        run["onsets"],
        run["durations"],
        delay_samples=run["delay"],
        margin_samples=10,  # the simulated exposure is exact: 1/3 ms of slack
    )
    observed = classify_led(led_brightness(frames, cal.region)).bits
    assigned, record = align_frames_to_triggers(
        observed, expected, repeats=repeated_frames(frames)
    )
    truth = run["truth_counts"]
    wrong = np.flatnonzero((assigned >= 0) & (assigned != truth))
    assert wrong.size == 0, (wrong, assigned[wrong], truth[wrong])
    # The pulses are sent on host time, not aimed between exposures, so some
    # LED edges fall on exposures (uncertain bits); frames before the first
    # pulse and after the last cannot be proven. Seen: 0.79–0.94 aligned.
    assert record.n_aligned >= 0.6 * record.n_frames, record
    assert record.mismatch_fraction < 0.05


def test_a_pixel_that_follows_the_led_exactly_saves_as_a_valid_file(tmp_path):
    """Found by the HIL test once the file's rules were enforced: the one-pass
    sums put a perfect pixel's correlation a few ulp over 1, and the saved file
    was refused as out of range."""
    from calibration.led_region import pixel_correlation

    rng = np.random.default_rng(4)
    state = rng.integers(0, 2, 240).astype(bool)
    frames = np.full((240, 40, 40), 37.0)
    frames[:, 10:14, 20:24] += 150.0 * state[:, None, None]  # on, off: nothing else
    r = pixel_correlation(frames, state)
    assert np.all(np.abs(r) <= 1.0)
    assert r[11, 21] == pytest.approx(1.0)
    found = fit_led_region(frames.astype(np.uint8), state.astype(int), rig_id="t")
    assert found.separation < 1e12  # noise-free: large, finite, savable
    save_calibration(found, tmp_path)
    assert load_led_region(tmp_path / "led_region.json").region == found.region
