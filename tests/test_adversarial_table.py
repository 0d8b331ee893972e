"""Hostile inputs through the real command line: a quick representative subset.

``scripts/adversarial_table.py`` generates some 400 hostile inputs (protocol and
rig TOML, calibration JSON, recording folders, Spike Recorder WAV + events,
command-line flags, serial ports) and classifies what the CLI does with each.
The full run is a benchmark-like script (a few minutes); this test runs the
cases marked ``quick`` (about 80, one or more of each kind and failure mode,
under a minute) and asserts no traceback, no hang and no silent wrong result.

``KNOWN`` lists the quick cases that still fail, each with the file its fix
belongs in (files another engineer is editing). The test fails on any other
failure, and on a known one that no longer fails (remove it from ``KNOWN``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "adversarial_table", ROOT / "scripts" / "adversarial_table.py"
)
table = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = table  # dataclasses look their module up there
spec.loader.exec_module(table)

# kind/name -> the file whose fix it waits for (none: every quick case passes)
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def quick_cases():
    with tempfile.TemporaryDirectory() as tmp:
        silent = table.Silent()
        try:
            cases = [c for c in table.build_cases(Path(tmp), silent=silent) if c.quick]
            table.run_cases(cases, Path(tmp), jobs=min(2, os.cpu_count() or 1))
        finally:
            silent.close()
        yield cases


@pytest.mark.slow
def test_no_traceback_hang_or_silent_wrong_result(quick_cases):
    kinds = {c.kind for c in quick_cases}
    assert kinds == set(table.KINDS)  # every kind of input is represented
    failing = {
        f"{c.kind}/{c.name}": f"{c.outcome}: {c.detail}"
        for c in quick_cases
        if c.outcome in table.FAILURES
    }
    new = {k: v for k, v in failing.items() if k not in KNOWN}
    assert not new, "\n" + "\n".join(f"{k}: {v}" for k, v in new.items())
    fixed = sorted(k for k in KNOWN if k not in failing)
    assert not fixed, f"fixed now, remove from KNOWN: {fixed}"


@pytest.mark.slow
def test_every_refusal_names_the_file_or_field(quick_cases):
    vague = {
        f"{c.kind}/{c.name}": c.detail
        for c in quick_cases
        if c.outcome in ("vague error", "refused valid")
    }
    assert not vague, vague


def test_the_classifier_tells_each_outcome_apart():
    """The classifier itself, on made-up results (a table that cannot fail is
    worth nothing)."""
    R, C = table.Result, table.Case

    def outcome(case, **result):
        case.result = R(**result)
        return table.classify(case)[0]

    refuse = C("cli", "x", "refuse", ("--n",))
    assert outcome(refuse, rc=2, stderr="neurorig: error: --n 0: allowed ≥ 1") == (
        "clear error"
    )
    assert outcome(refuse, rc=2, stderr="log: /x\nneurorig: error: bad") == (
        "vague error"
    )
    assert outcome(refuse, rc=0) == "silent wrong"
    assert outcome(refuse, rc=1, stderr="Traceback (most recent call last):\nE") == (
        "traceback"
    )
    assert outcome(refuse, rc=-9) == "traceback"
    assert outcome(refuse, timed_out=True) == "hang"
    server = C("cli", "sim", "refuse", ("--rate",), runs_forever=True)
    assert outcome(server, timed_out=True) == "silent wrong"  # it started
    accept = C("protocol", "ok", "accept", check=table.stdout_has("2 stimuli"))
    assert outcome(accept, rc=0, stdout="2 stimuli") == "accepted ok"
    assert outcome(accept, rc=0, stdout="0 stimuli") == "silent wrong"
    assert outcome(accept, rc=2, stderr="neurorig: error: no") == "refused valid"
