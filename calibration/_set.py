"""The calibrations in force: one file per kind read back by its ``kind``
(``load_calibration``), and a rig's folder of them (``CalibrationSet``).

Apart from ``calibration._files`` (the format) so that the calibration modules
import the format and this module imports them: imports point one way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from calibration._files import (
    CalibrationError,
    as_object,
    from_dict,
    read_json,
    shown,
    to_dict,
)
from calibration.camera import CameraCalibration
from calibration.gain import GainCalibration
from calibration.led_region import LedRegionCalibration
from calibration.stimulator import StimulatorCalibration
from calibration.timing import TimingCalibration

# The kinds a rig's set holds, and the class that reads each.
CLASSES = (
    CameraCalibration,
    GainCalibration,
    StimulatorCalibration,
    TimingCalibration,
    LedRegionCalibration,
)
KINDS = tuple(c.KIND for c in CLASSES)
# What stands in for a missing or unreadable calibration of a kind.
_INSTEAD = {"led_region": "the rig file's [camera] led_region_px is used, if any"}


def load_calibration(path: str | Path, kind: str | None = None) -> Any:
    """Read a calibration file, dispatching on its ``kind`` (with ``kind``, the
    file must hold that kind). Every value is checked (``from_dict``); any
    problem is a CalibrationError naming the file and the field."""
    classes = {c.KIND: c for c in CLASSES}
    path = Path(path)
    data = as_object(read_json(path), str(path))
    if kind is None:
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in classes:
            raise CalibrationError(
                f"{path}: kind = {shown(kind)}; allowed one of {sorted(classes)}"
            )
    return from_dict(classes[kind], data, str(path))


class CalibrationSet:
    """The calibration files in force for a rig, with warnings for missing/stale ones."""

    def __init__(self, calibrations: dict[str, Any], warnings: list[str]) -> None:
        self.calibrations = calibrations
        self.warnings = warnings

    @classmethod
    def load(
        cls, folder: str | Path | None, *, max_age_days: float = 30.0
    ) -> CalibrationSet:
        """Load ``<folder>/<kind>.json`` for every kind; warn about gaps and age."""
        found: dict[str, Any] = {}
        warnings: list[str] = []
        if folder is None:
            return cls({}, [f"no calibration folder: {', '.join(KINDS)} uncalibrated"])
        folder = Path(folder)
        now = dt.datetime.now(dt.UTC)
        for kind in KINDS:
            path = folder / f"{kind}.json"
            if not path.exists():
                warnings.append(
                    f"{kind}: no calibration ({path} missing); "
                    f"{_INSTEAD.get(kind, 'nominal values used')}"
                )
                continue
            try:
                cal = load_calibration(path, kind)
            except CalibrationError as exc:
                warnings.append(
                    f"{kind}: {exc}; {_INSTEAD.get(kind, 'nominal values used')}"
                )
                continue
            # checked: ISO 8601 with a time zone, not in the future
            age = now - dt.datetime.fromisoformat(cal.fitted_at)
            if age.days > max_age_days:
                warnings.append(
                    f"{kind}: calibration is {age.days} days old (fitted {cal.fitted_at}); "
                    f"recalibrate (limit {max_age_days:g} days)"
                )
            found[kind] = cal
        return cls(found, warnings)

    def get(self, kind: str) -> Any:
        """The calibration of ``kind`` or None."""
        return self.calibrations.get(kind)

    def to_metadata(self) -> dict[str, Any]:
        """Every calibration in force, and the warnings, for the recording."""
        out: dict[str, Any] = {k: to_dict(v) for k, v in self.calibrations.items()}
        out["warnings"] = list(self.warnings)
        return out
