"""Run ``neurorig analyze`` on generated Spike Recorder files and score it.

The generator (generator.py) and the scorer (scoring.py) share no code with the
analysis; this module only writes a case to disk, runs the real command line on
it (in-process, so the suite stays fast) and hands the JSON to the scorer.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from rig.cli import main as neurorig

from .generator import Case, make_case, write_spike_recorder
from .scoring import score


def analyse_case(case: Case, folder: Path, *, give_pulse: bool = True) -> dict:
    """The analysis JSON of ``case`` written as NAME.wav + NAME-events.txt."""
    wav, _ = write_spike_recorder(case, folder / "case.wav")
    out = folder / "case.json"
    argv = [
        "analyze", str(wav),
        "--electrode-positions-mm", ",".join(f"{p:g}" for p in case.positions_mm),
        "--uv-per-count", repr(case.uv_per_count),
        "--stimulus-markers", ",".join(case.stimulus_marker_ids),
        "--json", str(out), "--quiet",
    ]  # fmt: skip
    given = case.pulse_ms_given_by_id
    if give_pulse and given and len(set(given.values())) == 1:
        (ms,) = set(given.values())
        if ms is not None:
            argv += ["--pulse-duration-ms", repr(float(ms))]
    elif give_pulse and given and any(v is not None for v in given.values()):
        lines = [
            f'[markers."{marker}"]\nduration_ms = {float(ms)!r}'
            for marker, ms in given.items()
            if ms is not None
        ]
        (folder / "markers.toml").write_text("\n".join(lines) + "\n")
        argv += ["--marker-map", str(folder / "markers.toml")]
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        code = neurorig(argv)
    if code != 0:
        raise RuntimeError(f"neurorig {' '.join(argv)} exited {code}")
    return json.loads(out.read_text())


def run_condition(name: str, condition, seed: int, folder: Path) -> dict:
    """Generate, analyse and score one condition."""
    case = make_case(condition, seed)
    result = analyse_case(case, folder)
    scored = score(result, case)
    scored["name"] = name
    scored["seed"] = seed
    return scored
