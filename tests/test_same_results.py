"""scripts/same_results.py compare: byte-identical dumps pass; a changed
number, a changed verdict or a missing result is named and fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import same_results  # noqa: E402


def _dump(folder: Path, **results) -> Path:
    folder.mkdir()
    for name, result in results.items():
        same_results._write(folder, name, result)
    return folder


def test_identical_dumps_pass_and_run_only_keys_are_left_out(tmp_path, capsys):
    one = {"velocity": 2.5, "verdict": "ok", "software": {"version": "1"}}
    a = _dump(tmp_path / "a", r=one, s={"x": [1, None]})
    b = _dump(
        tmp_path / "b", r={**one, "software": {"version": "2"}}, s={"x": [1, None]}
    )
    assert same_results.compare(a, b) == 0
    assert "2 results, 2 byte-identical" in capsys.readouterr().out
    assert "software" not in json.loads((a / "r.json").read_text())


def test_every_difference_is_named(tmp_path, capsys):
    a = _dump(tmp_path / "a", r={"v": [2.5, 1.0], "flag": True}, gone={"v": 1})
    ulp = 1.0 + 2.0**-52
    b = _dump(tmp_path / "b", r={"v": [2.6, ulp], "flag": False})
    assert same_results.compare(a, b) == 1
    out = capsys.readouterr().out
    assert "r.json.v[0]: 2.5 then 2.6" in out
    assert "r.json.flag: True then False" in out
    assert "gone.json: missing" in out
    assert "v[1]" not in out.split("\n", 1)[1]  # a ulp: the largest difference only
    assert "3 differences" in out
