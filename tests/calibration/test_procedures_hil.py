"""Each calibration procedure, run by `neurorig calibrate` against the simulated
rig over its pseudo-terminal, recovers the simulator's known truth."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import CalibrationSet, load_calibration
from firmware_bridge.sim import CameraOptics, delivered_vpp
from firmware_bridge.sim.board import AMPLIFIER_GAIN_ERROR, BoardLimits
from firmware_bridge.sim.camera import EXPOSURE_DELAY_S
from rig.cli import main as neurorig

FS_HZ = 30_000
CAMERA_FPS = 60


def calibrate(kind, folder, *extra):
    status = neurorig(["calibrate", kind, "--sim", "--out", str(folder), *extra])
    assert status == 0
    return load_calibration(folder / f"{kind}.json")


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


def test_camera_scale_within_half_a_percent(tmp_path):
    cal = calibrate("camera", tmp_path)
    assert cal.px_per_mm == pytest.approx(CameraOptics().px_per_mm, rel=0.005)
    assert cal.reprojection_error_px < 0.5


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
    from rig.procedures.calibrate import pair_runs_with_flashes

    rng = np.random.default_rng(5)
    period = 500.0
    onsets = np.cumsum(rng.uniform(9.2, 10.8, 30) * period)  # ~0.17 s apart
    firsts = np.ceil((onsets - 60) / period) * period  # first trigger seeing each
    keep = rng.random(30) > 0.1  # some runs lost (frames dropped)
    stamped = firsts[keep] + shift_frames * period
    paired_onsets, paired_firsts = pair_runs_with_flashes(stamped, onsets, period)
    np.testing.assert_array_equal(paired_onsets, onsets[keep])
    np.testing.assert_array_equal(paired_firsts, stamped)
