"""Calibration files: one small versioned JSON per calibration, and the rules
every value in one must keep.

The format only: this module imports no calibration module (each of them
imports it), so the set that reads every kind is ``calibration._set``.

Every file has ``kind``, ``schema_version``, ``fitted_at`` (ISO 8601 with its
time zone), ``rig_id``, ``residual_rms`` and ``n_measurements`` beside its
values, whose names carry their units. Each calibration class states a
``Rule`` for every one of its fields (``RULES``); a file is read through
``from_dict``, which refuses the first value that breaks its rule with the
file, the field, the value and what is allowed, so a NaN, an infinity, a zero
that divides or a value of the wrong type never reaches a session or an
analysis (docs/calibration.md, "File format").
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# A calibration file is a few hundred bytes; anything far larger is not one
# (and is not read whole into memory to find out).
MAX_FILE_BYTES = 1 << 20
# A clock a little ahead of this one is tolerated; a file fitted later than
# that would never grow stale.
FUTURE_TOLERANCE = dt.timedelta(days=1)


class CalibrationError(ValueError):
    """A calibration file or fit that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Rule:
    """What one field must hold: ``ok(value)`` and, for the message, ``allowed``."""

    ok: Callable[[Any], bool]
    allowed: str


def _finite(value: Any) -> bool:
    """A JSON number (not a boolean) that is finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _in(value: Any, low: float, high: float, low_open: bool) -> bool:
    if not _finite(value):
        return False
    return (low < value if low_open else low <= value) and value <= high


def _range(low: float, high: float, low_open: bool) -> str:
    return f"{'>' if low_open else '≥'} {low:g} and ≤ {high:g}"


def number(
    low: float, high: float, *, low_open: bool = False, optional: bool = False
) -> Rule:
    """A finite number in [low, high] ((low, high] with ``low_open``); with
    ``optional``, null where it was not measured."""
    allowed = f"a finite number {_range(low, high, low_open)}"
    if optional:
        allowed += " (null if not measured)"
    return Rule(
        lambda v: (optional and v is None) or _in(v, low, high, low_open), allowed
    )


def whole(low: int, high: int) -> Rule:
    """A whole number in [low, high]."""
    return Rule(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
        f"a whole number {low:g}–{high:g}",
    )


def numbers(
    low: float,
    high: float,
    *,
    length: tuple[int, int] = (1, 32),
    low_open: bool = False,
) -> Rule:
    """A list of ``length[0]``–``length[1]`` finite numbers, each in range."""
    n_lo, n_hi = length
    count = f"{n_lo}" if n_lo == n_hi else f"{n_lo}–{n_hi}"
    return Rule(
        lambda v: (
            isinstance(v, list)
            and n_lo <= len(v) <= n_hi
            and all(_in(x, low, high, low_open) for x in v)
        ),
        f"a list of {count} finite numbers, each {_range(low, high, low_open)}",
    )


def _text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= 200


def _timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    if when.tzinfo is None:
        return False
    return when <= dt.datetime.now(dt.UTC) + FUTURE_TOLERANCE


# The fields every calibration file has.
COMMON_RULES = {
    "fitted_at": Rule(
        _timestamp,
        "an ISO 8601 time with its time zone, e.g. 2026-01-31T12:00:00+00:00, "
        "not in the future",
    ),
    "rig_id": Rule(_text, "a non-empty name of at most 200 characters"),
    "residual_rms": number(0, 1e9, optional=True),
    "n_measurements": whole(1, 10**12),
}


def now_utc() -> str:
    """Current time, ISO 8601 UTC."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def to_dict(calibration: Any) -> dict[str, Any]:
    """A calibration dataclass as a JSON-ready dict (arrays become lists)."""
    out = {"kind": calibration.KIND, "schema_version": SCHEMA_VERSION}
    for key, value in asdict(calibration).items():
        out[key] = value.tolist() if hasattr(value, "tolist") else value
    return out


def shown(value: Any) -> str:
    """``value`` for a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), "a number" if _finite(value) else repr(value))


def rules_of(cls: type[Any]) -> dict[str, Rule]:
    """Every field's rule for calibration class ``cls`` (its own and the common)."""
    return {**COMMON_RULES, **cls.RULES}


def as_object(data: Any, source: str) -> dict[str, Any]:
    """``data`` if it is a JSON object, else CalibrationError saying what it is."""
    if not isinstance(data, dict):
        raise CalibrationError(
            f"{source}: holds {_what(data)}; a calibration file holds one JSON "
            'object {"kind": ..., "schema_version": 1, ...}'
        )
    return data


def from_dict(cls: type[Any], data: Any, source: str = "<dict>") -> Any:
    """Build ``cls`` from a dict, checking kind, version and every field by name."""
    data = as_object(data, source)
    if data.get("kind") != cls.KIND:
        raise CalibrationError(
            f"{source}: kind = {shown(data.get('kind'))}; expected {cls.KIND!r}"
        )
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise CalibrationError(
            f"{source}: schema_version = {shown(version)}; this neurorig reads "
            f"version {SCHEMA_VERSION}"
        )
    # A field added later has a default (a file from before it lacks it).
    required = [f.name for f in fields(cls) if f.default is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise CalibrationError(f"{source}: missing field(s) {missing}")
    names = [f.name for f in fields(cls) if f.name in data]
    rules = rules_of(cls)
    for name in names:
        value = data[name]
        if not rules[name].ok(value):
            raise CalibrationError(
                f"{source}: {name} = {shown(value)}: allowed {rules[name].allowed}"
            )
    calibration = cls(**{n: data[n] for n in names})
    check = getattr(calibration, "inconsistency", None)  # across fields
    problem = check() if check is not None else None
    if problem is not None:
        raise CalibrationError(f"{source}: {problem}")
    return calibration


def read_json(path: Path) -> Any:
    """The JSON value in ``path``, or CalibrationError naming the file.

    The file must be a regular file (a named pipe nobody writes would never
    end; checked before it is opened), at most ``MAX_FILE_BYTES``, UTF-8 text
    and JSON nested no deeper than the parser's recursion limit.
    """
    if not path.exists():
        raise CalibrationError(f"{path}: no such file")
    if not path.is_file():
        raise CalibrationError(
            f"{path}: not a regular file (a folder, pipe or device); "
            "allowed: a calibration JSON file"
        )
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CalibrationError(
            f"{path}: cannot read a calibration file ({exc.strerror or exc})"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise CalibrationError(
            f"{path}: larger than {MAX_FILE_BYTES} bytes; not a calibration file"
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CalibrationError(
            f"{path}: not UTF-8 text; allowed: a calibration JSON file"
        ) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise CalibrationError(
            f"{path}: not a calibration file (JSON nested too deep)"
        ) from None
    except ValueError as exc:  # JSONDecodeError, or an integer of 5000 digits
        raise CalibrationError(f"{path}: not valid JSON ({exc})") from None


def save_calibration(calibration: Any, folder: str | Path) -> Path:
    """Write ``<folder>/<kind>.json`` (atomically) and return its path.

    The values are checked by the rules a reader applies first: a fit that
    came out NaN or out of range is refused here, never written to be refused
    (or worse, used) later.
    """
    folder = Path(folder)
    path = folder / f"{calibration.KIND}.json"
    data = to_dict(calibration)
    from_dict(type(calibration), data, f"{path} (not written)")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
