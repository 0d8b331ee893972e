"""Each calibration procedure, run by `neurorig calibrate` against the simulated
rig (in its own process, over its pseudo-terminal and camera socket), recovers
the simulator's known truth."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from calibration import (
    CalibrationError,
    CalibrationSet,
    LedRegionCalibration,
    load_calibration,
    save_calibration,
)
from firmware_bridge.sim import CameraOptics, delivered_vpp
from firmware_bridge.sim.board import AMPLIFIER_GAIN_ERROR, BoardLimits
from firmware_bridge.sim.camera import EXPOSURE_DELAY_S
from rig.cli import main as neurorig
from rig.core.connect import open_rig
from rig.procedures.latency import external_simulator
from rig.rig_file import RigDescription

FS_HZ = 30_000
CAMERA_FPS = 60


def calibrate(kind, folder, *extra):
    status = neurorig(["calibrate", kind, "--sim", "--out", str(folder), *extra])
    assert status == 0
    return load_calibration(folder / f"{kind.replace('-', '_')}.json")


def test_gain_within_half_a_percent_of_the_amplifiers_true_gain(tmp_path):
    cal = calibrate("gain", tmp_path)
    limits = BoardLimits()
    nominal_uv = limits.adc_range_vpp / 2**limits.adc_bits / 1000.0 * 1e6
    true_uv = nominal_uv / AMPLIFIER_GAIN_ERROR
    assert len(cal.uv_per_count) == 4
    np.testing.assert_allclose(cal.uv_per_count, true_uv, rtol=0.005)
    # The nominal figure is measurably wrong: the calibration is doing work.
    assert abs(np.mean(cal.uv_per_count) / nominal_uv - 1) > 0.01


def test_stimulator_within_two_percent_over_the_working_range(tmp_path):
    cal = calibrate("stimulator", tmp_path)
    for commanded in np.linspace(1.0, 6.0, 11):
        assert cal.delivered_for(commanded) == pytest.approx(
            delivered_vpp(commanded), rel=0.02
        )
    # The correction inverts the truth: asking 5 Vpp delivers 5 Vpp.
    assert delivered_vpp(cal.command_for(5.0)) == pytest.approx(5.0, rel=0.02)


def test_timing_offset_within_a_tenth_of_a_frame_interval(tmp_path):
    cal = calibrate("timing", tmp_path)
    true_samples = EXPOSURE_DELAY_S * FS_HZ
    frame_period = FS_HZ / CAMERA_FPS
    assert cal.frame_period_samples == pytest.approx(frame_period)
    assert abs(cal.offset_samples - true_samples) <= 0.1 * frame_period
    # The accuracy it states is the data's, holds the truth, and meets 10 %.
    assert cal.accuracy_samples is not None
    assert abs(cal.offset_samples - true_samples) <= cal.accuracy_samples
    assert cal.accuracy_samples <= 0.1 * frame_period


def test_timing_over_the_pty_with_frames_lost_states_what_it_knows():
    # The simulator in its own process, its camera on a socket dropping 5 % of
    # frames: the procedure leaves out flashes whose frame before was lost and
    # flashes more until the delay is narrowed; asked for more than a handful
    # of flashes can give, it refuses rather than states a delay.
    from rig.core.connect import SimulatorProcess, simulated_rig_description
    from rig.procedures.calibrate import calibrate_timing

    socket_path = Path(tempfile.mkdtemp(prefix="nr-")) / "cam.sock"
    options = {"seed": "16", "channels": "4", "camera-socket": str(socket_path),
               "camera-drop-rate": "0.05"}  # fmt: skip
    try:
        with SimulatorProcess(options) as child:
            session = open_rig(
                child.port, camera=str(socket_path),
                rig=simulated_rig_description(4), camera_rate_hz=CAMERA_FPS,
                optical_sync=False,
            )  # fmt: skip
            try:
                session.start()
                cal = calibrate_timing(session)
                with pytest.raises(CalibrationError, match="not determined"):
                    calibrate_timing(
                        session, n_events=6, max_events=6,
                        required_accuracy_frames=0.01,
                    )  # fmt: skip
            finally:
                session.close()
    finally:
        shutil.rmtree(socket_path.parent, ignore_errors=True)
    truth = EXPOSURE_DELAY_S * FS_HZ
    assert abs(cal.offset_samples - truth) <= cal.accuracy_samples <= 50


def test_camera_scale_within_half_a_percent(tmp_path):
    cal = calibrate("camera", tmp_path)
    assert cal.px_per_mm == pytest.approx(CameraOptics().px_per_mm, rel=0.005)
    assert cal.reprojection_error_px < 0.5


def test_led_region_found_where_the_simulated_camera_draws_its_led(tmp_path, capsys):
    cal = calibrate("led-region", tmp_path)
    assert cal.region == CameraOptics().led_region_px  # to the pixel
    assert cal.correlation > 0.9 and cal.residual_rms < 0.1
    assert cal.image_size_px == [640, 480] and cal.n_measurements > 50
    # It says where it goes: the calibrations folder, or the rig file.
    out = capsys.readouterr().out
    assert f"--calibrations {tmp_path}" in out
    assert "led_region_px = [12, 28, 612, 628]" in out


def test_the_measured_led_region_wins_over_the_rig_files(tmp_path):
    measured = LedRegionCalibration(
        top_px=100, bottom_px=110, left_px=200, right_px=214, correlation=0.99,
        separation=50.0, image_size_px=[640, 480], fitted_at="2026-12-01T00:00:00+00:00",
        rig_id="rig-1", residual_rms=0.0, n_measurements=200,
    )  # fmt: skip
    save_calibration(measured, tmp_path)
    in_force = CalibrationSet.load(tmp_path, max_age_days=1e6)
    assert in_force.get("led_region") == measured
    rig = RigDescription(led_region_px=(1, 5, 1, 5))
    with open_rig("sim://?seed=2", rig=rig, calibrations=in_force) as session:
        assert session.led_region_px == (100, 110, 200, 214)
    with open_rig("sim://?seed=2", rig=rig) as session:
        assert session.led_region_px == (1, 5, 1, 5)


def test_timing_refuses_a_rig_whose_led_is_not_placed(tmp_path, capsys):
    # A board known only by its port, with a camera, and no rig file: where
    # its LED shows is not known, and the calibration says how to find out.
    socket_path = Path(tempfile.mkdtemp(prefix="nr-")) / "cam.sock"
    try:
        with external_simulator(seed=6, camera_socket=socket_path) as port:
            status = neurorig(
                ["calibrate", "timing", "--port", port, "--camera", str(socket_path),
                 "--out", str(tmp_path)]
            )  # fmt: skip
    finally:
        shutil.rmtree(socket_path.parent, ignore_errors=True)
    assert status == 2
    err = capsys.readouterr().err
    assert "where the LED shows in the image is not known" in err
    assert "neurorig calibrate led-region" in err
    assert not (tmp_path / "timing.json").exists()


def test_written_files_load_as_a_set_without_warnings(tmp_path):
    calibrate("gain", tmp_path)
    partial = CalibrationSet.load(tmp_path)
    assert list(partial.calibrations) == ["gain"]
    assert any(w.startswith("camera: no calibration") for w in partial.warnings)
    assert partial.to_metadata()["gain"]["kind"] == "gain"


def test_no_board_on_the_port_is_refused_clearly(capsys):
    status = neurorig(["calibrate", "gain", "--port", "/dev/null", "--out", "x"])
    assert status == 2
    assert "cannot connect to the board" in capsys.readouterr().err


@pytest.mark.parametrize("shift_frames", [0, 6, -5])
def test_lit_runs_are_paired_with_their_flashes_whatever_the_stamps_shift(
    shift_frames,
):
    from calibration.timing import pair_runs_with_flashes

    rng = np.random.default_rng(5)
    period = 500.0
    onsets = np.cumsum(rng.uniform(9.2, 10.8, 30) * period)  # ~0.17 s apart
    firsts = np.ceil((onsets - 60) / period) * period  # first trigger seeing each
    keep = rng.random(30) > 0.1  # some runs lost (frames dropped)
    stamped = firsts[keep] + shift_frames * period
    paired_onsets, paired_firsts = pair_runs_with_flashes(stamped, onsets, period)
    np.testing.assert_array_equal(paired_onsets, onsets[keep])
    np.testing.assert_array_equal(paired_firsts, stamped)
