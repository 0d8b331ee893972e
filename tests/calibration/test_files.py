"""Calibration files that must be refused, each with the file and the field
named and what is allowed; a set that meets one warns and uses nominal values.
(tests/fuzz/test_calibration_fuzz.py throws random files at the same code.)"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading

import pytest

from calibration import (
    CalibrationError,
    CalibrationSet,
    CameraCalibration,
    GainCalibration,
    LedRegionCalibration,
    StimulatorCalibration,
    TimingCalibration,
    fit_camera_scale_from_ruler,
    load_calibration,
    save_calibration,
)
from calibration._files import rules_of

GAIN = {
    "kind": "gain",
    "schema_version": 1,
    "uv_per_count": [0.0763] * 4,
    "offset_counts": [0.0] * 4,
    "noise_uv_rms": [2.0] * 4,
    "test_amplitude_uvpp": 100.0,
    "test_frequency_hz": 1000.0,
    "fitted_at": "2026-01-01T00:00:00+00:00",
    "rig_id": "rig-1",
    "residual_rms": 0.1,
    "n_measurements": 30,
}


def gain_file(tmp_path, text):
    path = tmp_path / "gain.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_every_field_of_every_calibration_has_a_rule():
    for cls in (
        CameraCalibration,
        GainCalibration,
        StimulatorCalibration,
        TimingCalibration,
        LedRegionCalibration,
    ):
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == set(rules_of(cls)), cls.KIND


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00\x01" * 20, "not UTF-8 text"),
        ("", "not valid JSON"),
        ("{uv_per_count: 1", "not valid JSON"),
        ("null", "holds null; a calibration file holds one JSON object"),
        ("[]", "holds a list"),
        ('"gain"', "holds a string"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ("1" * 5000, "not valid JSON"),  # beyond int()'s digit limit
        (json.dumps({**GAIN, "kind": "timing"}), "kind = 'timing'; expected 'gain'"),
        (json.dumps({**GAIN, "kind": ["gain"]}), "kind = ['gain']"),
        (json.dumps({**GAIN, "schema_version": True}), "schema_version = True"),
        (json.dumps({**GAIN, "fitted_at": "yesterday"}), "fitted_at = 'yesterday'"),
        (json.dumps({**GAIN, "fitted_at": 5}), "fitted_at = 5: allowed an ISO 8601"),
        (json.dumps({**GAIN, "fitted_at": "2026-01-01T00:00:00"}), "time zone"),
        (json.dumps({**GAIN, "fitted_at": "2999-01-01T00:00:00+00:00"}), "future"),
        (json.dumps({**GAIN, "uv_per_count": [math.nan] * 4}), "uv_per_count = [nan"),
        (json.dumps({**GAIN, "uv_per_count": [0.0] * 4}), "each > 0"),
        (json.dumps({**GAIN, "uv_per_count": []}), "a list of 1–32"),
        (json.dumps({**GAIN, "uv_per_count": "0.07"}), "uv_per_count = '0.07'"),
        (json.dumps({**GAIN, "offset_counts": [0.0] * 3}), "one per channel"),
        (json.dumps({**GAIN, "rig_id": "  "}), "rig_id = '  '"),
        (json.dumps({**GAIN, "n_measurements": 2.5}), "n_measurements = 2.5"),
        (json.dumps({**GAIN, "residual_rms": -1}), "residual_rms = -1"),
        (json.dumps({**GAIN, "test_frequency_hz": math.inf}), "test_frequency_hz"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else "bytes",
)
def test_a_bad_file_names_the_file_the_field_and_what_is_allowed(
    tmp_path, content, message
):
    path = gain_file(tmp_path, content)
    with pytest.raises(CalibrationError) as info:
        load_calibration(path, "gain")
    assert str(path) in str(info.value)
    assert message in str(info.value)
    loaded = CalibrationSet.load(tmp_path)  # a warning, never an exception
    assert "gain" not in loaded.calibrations
    assert any(w.startswith("gain:") and message in w for w in loaded.warnings)


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    [
        ("camera", {"px_per_mm": math.nan}, "px_per_mm = nan: allowed a finite"),
        ("camera", {"px_per_mm": 0}, "px_per_mm = 0"),
        ("camera", {"camera_matrix": [1, 2]}, "camera_matrix = [1, 2]"),
        ("camera", {"dist_coeffs": [0.0, 0.0]}, "dist_coeffs"),
        ("camera", {"image_size_px": [640.5, 480]}, "image_size_px"),
        ("stimulator", {"coefficients": ["a", "b", "c"]}, "coefficients = ['a'"),
        ("stimulator", {"coefficients": [1.0]}, "a list of 3 finite numbers"),
        ("stimulator", {"coefficients": [0.0, 0.0, 0.0]}, "must rise"),
        ("stimulator", {"commanded_min_vpp": 6.0, "commanded_max_vpp": 1.0},
         "commanded_min_vpp < commanded_max_vpp"),
        ("timing", {"offset_s": math.nan}, "offset_s = nan"),
        ("timing", {"frame_period_samples": 0}, "frame_period_samples = 0"),
    ],
)  # fmt: skip
def test_values_out_of_range_are_refused(tmp_path, kind, changes, message):
    good = {
        "camera": fit_camera_scale_from_ruler(
            (0, 0), (320, 0), 100.0, image_size_px=(640, 480), rig_id="x"
        ),
        "stimulator": StimulatorCalibration(
            [0.0, 1.0, -0.001], 1.0, 6.0, "2026-01-01T00:00:00+00:00", "x", 0.01, 20
        ),
        "timing": TimingCalibration(
            60.0, 0.002, 2.0, 500.0, "2026-01-01T00:00:00+00:00", "x", 1.0, 30
        ),
    }[kind]
    path = save_calibration(good, tmp_path)  # valid: written
    assert load_calibration(path) == good
    data = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    assert str(path) in str(info.value) and message in str(info.value)
    # and a calibration object holding the same values is never written
    bad = dataclasses.replace(good, **changes)
    with pytest.raises(CalibrationError, match="not written"):
        save_calibration(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_ruler_scale_leaves_unmeasured_values_null_and_round_trips(tmp_path):
    ruler = fit_camera_scale_from_ruler(
        (0, 0), (320, 0), 100.0, image_size_px=(640, 480), rig_id="bench"
    )
    assert ruler.reprojection_error_px is None and ruler.residual_rms is None
    path = save_calibration(ruler, tmp_path)
    assert json.loads(path.read_text())["reprojection_error_px"] is None
    assert load_calibration(path) == ruler


@pytest.mark.parametrize("what", ["fifo", "folder"])
def test_a_file_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, what):
    path = tmp_path / "gain.json"
    if what == "fifo":
        os.mkfifo(path)  # nobody writes it: opening it to read would wait forever
    else:
        path.mkdir()
    result: list = []

    def load():
        result.append(CalibrationSet.load(tmp_path))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5.0)
    if what == "fifo" and thread.is_alive():  # unblock it, then fail
        with open(path, "wb"):
            pass
        pytest.fail("CalibrationSet.load blocked on a named pipe")
    [loaded] = result
    assert "gain" not in loaded.calibrations
    assert any("gain.json: not a regular file" in w for w in loaded.warnings)


def test_a_file_far_larger_than_a_calibration_is_not_read_whole(tmp_path):
    path = gain_file(tmp_path, b" " * (2 << 20))
    with pytest.raises(CalibrationError, match="larger than"):
        load_calibration(path)
