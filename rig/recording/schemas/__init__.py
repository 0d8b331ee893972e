"""JSON Schemas of what neurorig writes, shipped with the package
(docs/recording-format.md, "JSON Schemas"): ``metadata`` (a recording's
metadata.json), ``events`` (one line of its events.jsonl, each kind's fields in
``$defs``) and ``analysis`` (``neurorig analyze --json``). Draft 2020-12.

>>> sorted(schema("events")["$defs"])[:3]
['board_rebooted', 'camera_trigger', 'emergency_stop']
>>> problems({"sample": 5, "kind": "led", "duration_s": -1.0}, "events")
['duration_s: -1.0 is less than or equal to the minimum of 0']
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

NAMES = ("metadata", "events", "analysis")


@cache
def _text(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"no schema {name!r}; allowed: {', '.join(NAMES)}")
    return (resources.files(__name__) / f"{name}.schema.json").read_text("utf-8")


def schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (a fresh copy)."""
    return json.loads(_text(name))


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(name))


def problems(instance: Any, name: str) -> list[str]:
    """Where ``instance`` breaks schema ``name``: one line each, the JSON path
    first; empty when it is valid."""
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: e.json_path)
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top)"


def recording_problems(folder: str | Path) -> list[str]:
    """Every place a recording's metadata.json and events.jsonl break their
    schemas, each naming the file (and line); empty when both are valid."""
    from rig.recording import _format as f

    folder = Path(folder)
    out = [
        f"{f.METADATA}: {p}"
        for p in problems(json.loads((folder / f.METADATA).read_bytes()), "metadata")
    ]
    lines = (folder / f.EVENTS).read_bytes().decode("utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            event = json.loads(line)
            kind = event.get("kind") if isinstance(event, dict) else None
            out += [
                f"{f.EVENTS} line {number} ({kind}): {p}"
                for p in problems(event, "events")
            ]
    return out
