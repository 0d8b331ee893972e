"""Calibration files: one small versioned JSON per calibration, and the rig's set.

The format only: this module imports no calibration module (each of them
imports it), so the set that reads every kind is ``calibration._set``.

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
