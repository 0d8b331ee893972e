"""Calibration fits recover known truth from synthetic measurements."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from calibration import (
    CalibrationError,
    CalibrationSet,
    fit_camera,
    fit_camera_scale_from_ruler,
    fit_gain,
    fit_stimulator,
    fit_timing,
    load_calibration,
    save_calibration,
)
from firmware_bridge.sim import CameraOptics, delivered_vpp
from firmware_bridge.sim.targets import render_checkerboard


def checkerboards(optics, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return [
        render_checkerboard(
            optics,
            offset_mm=(rng.uniform(-5, 90), rng.uniform(-60, -5)),
            angle_rad=rng.uniform(-0.3, 0.3),
            noise_seed=i,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("k1", [0.0, -0.08])
def test_camera_scale_within_half_a_percent_and_distortion_recovered(k1):
    optics = CameraOptics(k1=k1)
    cal = fit_camera(checkerboards(optics), rig_id="sim")
    assert cal.px_per_mm == pytest.approx(optics.px_per_mm, rel=0.005)
    assert cal.dist_coeffs[0] == pytest.approx(k1, abs=0.01)
    assert cal.reprojection_error_px < 0.2 and cal.n_measurements == 8
    # Undistorting a point lands it where the ideal (undistorted) camera puts it.
    ideal = optics.raceway_to_undistorted_px(np.array([0.12]), np.array([0.05]))
    assert np.all(np.isfinite(cal.undistort_points(ideal)))


def test_camera_needs_the_board_in_enough_frames():
    blank = [np.full((480, 640), 128, np.uint8)] * 4
    with pytest.raises(CalibrationError, match="found in 0 of 4 frames"):
        fit_camera(blank, rig_id="x")


def test_ruler_gives_a_quick_scale():
    cal = fit_camera_scale_from_ruler(
        (100, 240), (420, 240), 100.0, image_size_px=(640, 480), rig_id="x"
    )
    assert cal.px_per_mm == pytest.approx(3.2)


def test_gain_within_half_a_percent_per_channel():
    fs, f, app = 30_000, 1000.0, 100.0
    true_uv_per_count = np.array([0.0763, 0.0771, 0.0750, 0.0769])
    t = np.arange(int(fs * 0.5)) / fs
    rng = np.random.default_rng(1)
    signal_uv = app / 2 * np.sin(2 * np.pi * f * t + 0.3)[:, None]
    noise_uv = rng.normal(0, 4.0, (t.size, 4))
    counts = np.rint(
        (signal_uv + noise_uv) / true_uv_per_count + np.array([3, -2, 0, 5])
    )
    cal = fit_gain(counts, fs_hz=fs, amplitude_uvpp=app, frequency_hz=f, rig_id="sim")
    np.testing.assert_allclose(cal.uv_per_count, true_uv_per_count, rtol=0.005)
    np.testing.assert_allclose(cal.noise_uv_rms, 4.0, rtol=0.1)
    np.testing.assert_allclose(cal.counts_to_uv(counts).mean(axis=0), 0.0, atol=0.5)


def test_stimulator_within_two_percent_and_inverse():
    commanded = np.repeat(np.arange(1.0, 6.01, 0.5), 2)
    rng = np.random.default_rng(2)
    measured = np.array([delivered_vpp(c) for c in commanded]) + rng.normal(
        0, 0.005, commanded.size
    )
    cal = fit_stimulator(commanded, measured, rig_id="sim")
    for c in (1.5, 3.0, 5.5):
        assert cal.delivered_for(c) == pytest.approx(delivered_vpp(c), rel=0.02)
    want = 5.0
    assert delivered_vpp(cal.command_for(want)) == pytest.approx(want, rel=0.005)
    with pytest.raises(CalibrationError, match="outside the calibrated output range"):
        cal.command_for(9.0)


def test_timing_offset_within_a_tenth_of_a_frame():
    rng = np.random.default_rng(3)
    period, delay = 500.0, 60.0  # samples: 60 fps at 30 kS/s, 2 ms exposure delay
    triggers = np.arange(0, 500 * 2000, period)
    onsets = np.sort(rng.uniform(1000, triggers[-2], 40))
    first = np.array([triggers[np.argmax(triggers + delay >= L)] for L in onsets])
    cal = fit_timing(
        onsets, first, frame_period_samples=period, fs_hz=30_000, rig_id="x"
    )
    assert abs(cal.offset_samples - delay) < 0.1 * period
    assert cal.offset_s == pytest.approx(cal.offset_samples / 30_000)


def test_files_round_trip_and_errors_name_the_problem(tmp_path):
    cal = fit_camera_scale_from_ruler(
        (0, 0), (320, 0), 100.0, image_size_px=(640, 480), rig_id="bench"
    )
    path = save_calibration(cal, tmp_path)
    assert path.name == "camera.json"
    loaded = load_calibration(path)
    assert loaded.px_per_mm == cal.px_per_mm and loaded.rig_id == "bench"
    data = json.loads(path.read_text())
    data["schema_version"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="schema_version = 7"):
        load_calibration(path)
    data["schema_version"] = 1
    del data["px_per_mm"]
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match=r"missing field\(s\) \['px_per_mm'\]"):
        load_calibration(path)


def test_calibration_set_warns_about_missing_and_stale_files(tmp_path):
    old = fit_camera_scale_from_ruler(
        (0, 0), (320, 0), 100.0, image_size_px=(640, 480), rig_id="bench"
    )
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).isoformat(
        timespec="seconds"
    )
    save_calibration(dataclasses.replace(old, fitted_at=stale), tmp_path)
    cals = CalibrationSet.load(tmp_path, max_age_days=30)
    text = "\n".join(cals.warnings)
    assert "camera: calibration is 90 days old" in text
    assert "gain: no calibration" in text and "timing: no calibration" in text
    meta = cals.to_metadata()
    assert meta["camera"]["px_per_mm"] == pytest.approx(3.2) and meta["warnings"]


@pytest.mark.parametrize("shift_frames", [-6, -1, 1, 6])
def test_timing_is_right_when_every_frame_is_stamped_whole_frames_off(shift_frames):
    # A busy host guessed every frame's trigger k frames off (issue 16): the
    # events still agree with each other, on a delay k periods away; the
    # physical window brings it back.
    rng = np.random.default_rng(4)
    period, delay = 500.0, 60.0
    triggers = np.arange(0, 500 * 2000, period)
    onsets = np.sort(rng.uniform(5000, triggers[-20], 30))
    first = np.array([triggers[np.argmax(triggers + delay >= L)] for L in onsets])
    cal = fit_timing(
        onsets, first + shift_frames * period, frame_period_samples=period,
        fs_hz=30_000, rig_id="x",
    )  # fmt: skip
    assert abs(cal.offset_samples - delay) < 0.1 * period
    assert cal.residual_rms < period / 2  # the shift does not inflate the scatter


def test_timing_window_must_be_one_period_wide():
    with pytest.raises(CalibrationError, match="one period wide"):
        fit_timing(
            np.arange(5.0), np.arange(5.0), frame_period_samples=500, fs_hz=30_000,
            rig_id="x", delay_window_periods=(0.0, 2.0),
        )  # fmt: skip
