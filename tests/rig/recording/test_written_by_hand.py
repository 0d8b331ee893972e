"""docs/recording-format.md is enough to write a recording without neurorig.

The doc's own example (section "Writing a recording from another program")
writes a recording with numpy, OpenCV and the standard library; it is run here
as a script in an empty folder, and the result is read back with neurorig's
reader and analysed by ``neurorig analyze``: the frame table and alignment
record written from the doc's description are taken as proven motion.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "recording-format.md"


def doc_example() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Writing a recording from another program") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has no python example"
    return match.group(1)


def test_a_recording_written_from_the_doc_is_read_and_analysed(tmp_path):
    code = doc_example()
    assert "RecordingWriter" not in code  # written by hand, not by neurorig
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    wrote = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "analyze", str(tmp_path / "by-hand"),
         "--json", str(tmp_path / "r.json"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert len(results["stimuli"]) == 1
    motion = results["motion"]
    assert motion["tracked"] is True
    assert motion["alignment"]["proven"] is True
    assert motion["alignment"]["n_proven"] == 60
    assert "motion not measured" not in out.stderr
