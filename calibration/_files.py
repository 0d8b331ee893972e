"""Calibration files: one small versioned JSON per calibration, and the rig's set.

Every file has ``kind``, ``schema_version``, ``fitted_at`` (ISO 8601, UTC),
``rig_id``, ``residual_rms`` and ``n_measurements`` beside its values, whose names
carry their units.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
KINDS = ("camera", "gain", "stimulator", "timing")


class CalibrationError(ValueError):
    """A calibration file or fit that cannot be used; the message says why."""


def now_utc() -> str:
    """Current time, ISO 8601 UTC."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def to_dict(calibration: Any) -> dict[str, Any]:
    """A calibration dataclass as a JSON-ready dict (arrays become lists)."""
    out = {"kind": calibration.KIND, "schema_version": SCHEMA_VERSION}
    for key, value in asdict(calibration).items():
        out[key] = value.tolist() if hasattr(value, "tolist") else value
    return out


def from_dict(cls: type[Any], data: dict[str, Any], source: str = "<dict>") -> Any:
    """Build ``cls`` from a dict, checking kind, version and fields by name."""
    if data.get("kind") != cls.KIND:
        raise CalibrationError(
            f"{source}: kind is {data.get('kind')!r}, expected {cls.KIND!r}"
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CalibrationError(
            f"{source}: schema_version {version!r}; this neurorig reads version {SCHEMA_VERSION}"
        )
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data]
    if missing:
        raise CalibrationError(f"{source}: missing field(s) {missing}")
    return cls(**{n: data[n] for n in names})


def save_calibration(calibration: Any, folder: str | Path) -> Path:
    """Write ``<folder>/<kind>.json`` (atomically) and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{calibration.KIND}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_dict(calibration), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_calibration(path: str | Path) -> Any:
    """Read a calibration file, dispatching on its ``kind``."""
    from calibration.camera import CameraCalibration
    from calibration.gain import GainCalibration
    from calibration.stimulator import StimulatorCalibration
    from calibration.timing import TimingCalibration

    classes = {
        c.KIND: c
        for c in (
            CameraCalibration,
            GainCalibration,
            StimulatorCalibration,
            TimingCalibration,
        )
    }
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(
            f"{path}: cannot read a calibration file ({exc})"
        ) from None
    kind = data.get("kind")
    if kind not in classes:
        raise CalibrationError(f"{path}: kind {kind!r} is not one of {sorted(classes)}")
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
                    f"{kind}: no calibration ({path} missing); nominal values used"
                )
                continue
            try:
                cal = load_calibration(path)
            except CalibrationError as exc:
                warnings.append(f"{kind}: {exc}; nominal values used")
                continue
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
