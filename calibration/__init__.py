"""Calibration fits: measurements in, versioned calibration files out. Pure maths."""

from calibration._files import SCHEMA_VERSION, CalibrationError, save_calibration
from calibration._set import KINDS, CalibrationSet, load_calibration
from calibration.camera import (
    CameraCalibration,
    fit_camera,
    fit_camera_scale_from_ruler,
)
from calibration.gain import GainCalibration, fit_gain
from calibration.led_region import (
    LedRegionCalibration,
    fit_led_region,
    load_led_region,
)
from calibration.stimulator import StimulatorCalibration, fit_stimulator
from calibration.timing import (
    TimingCalibration,
    fit_timing,
    fit_timing_from_frames,
)

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "CalibrationError",
    "CalibrationSet",
    "CameraCalibration",
    "GainCalibration",
    "LedRegionCalibration",
    "StimulatorCalibration",
    "TimingCalibration",
    "fit_camera",
    "fit_camera_scale_from_ruler",
    "fit_gain",
    "fit_led_region",
    "fit_stimulator",
    "fit_timing",
    "fit_timing_from_frames",
    "load_calibration",
    "load_led_region",
    "save_calibration",
]
