"""The built-in safety limits live with the rig files: ``rigs/safety-default.toml``
states every one, and they are the limits in force without a rig file."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from rig.rig_file import RigDescription, load_rig_file
from rig.safety import SafetyLimits, default_safety_limits

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = ROOT / "rigs" / "safety-default.toml"


def test_the_defaults_file_states_every_limit():
    table = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))
    assert list(table) == ["limits"]
    assert set(table["limits"]) == {f.name for f in fields(SafetyLimits)}


def test_the_defaults_file_is_the_limits_in_force_without_a_rig_file():
    from_file = load_rig_file(DEFAULTS).limits
    assert from_file == default_safety_limits()
    assert from_file == RigDescription().limits == load_rig_file(None).limits


def test_a_rig_file_that_leaves_a_limit_out_gets_the_files_value(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("[limits]\nmax_amplitude_vpp = 4.0\n")
    limits = load_rig_file(path).limits.to_dict()
    defaults = load_rig_file(DEFAULTS).limits.to_dict()
    assert limits.pop("max_amplitude_vpp") == 4.0
    defaults.pop("max_amplitude_vpp")
    assert limits == defaults
