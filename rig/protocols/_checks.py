"""Field checks shared by the sweep and closed-loop parsers: each raises a
ProtocolError naming the field, the value and what is allowed."""

from __future__ import annotations

import math
from typing import Any

from rig.protocols._errors import ProtocolError, unknown_key


def check_keys(source: str, path: str, table: Any, known: list[str]) -> None:
    """``table`` is a TOML table whose keys are all in ``known``."""
    if not isinstance(table, dict):
        raise ProtocolError(source, path, f"must be a table, got {table!r}")
    for key in table:
        if key not in known:
            raise unknown_key(source, path, key, known)


def number_in_range(
    source: str, path: str, value: Any, low: float, high: float, unit: str
) -> float:
    """``value`` is a number (not a bool, not NaN) within ``low``–``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(source, path, f"{value!r} is not a number")
    if isinstance(value, float) and math.isnan(value):
        raise ProtocolError(source, path, f"{value!r} is not a number")
    if not low <= value <= high:  # TOML integers have no size limit: no float()
        shown = (
            f"{value:g}"
            if isinstance(value, float) or abs(value) < 1e15
            else (f"{str(value)[:12]}… ({len(str(abs(value)))} digits)")
        )
        raise ProtocolError(
            source,
            path,
            f"{shown} is outside the allowed {low:g}–{high:g} {unit}".rstrip(),
        )
    return float(value)
