"""`neurorig analyze --csv --mat`: the per-stimulus-and-fibre table and the MATLAB
file, read back by the csv module and by GNU Octave (an independent reader of
MATLAB files), checked against the JSON of the same run."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rig.offline.tables import columns
from rig.recording import schemas
from tests.offline._recordings import worm_recording

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    worm = worm_recording(folder / "rec")  # a gap: one stimulus not analysed
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "analyze", str(worm.path), "--quiet",
         "--json", str(folder / "r.json"), "--csv", str(folder / "r.csv"),
         "--mat", str(folder / "r.mat")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads((folder / "r.json").read_text())
    assert schemas.problems(results, "analysis") == []
    with open(folder / "r.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return results, rows, folder / "r.mat"


def test_one_row_per_stimulus_and_fibre(outputs):
    results, rows, _ = outputs
    assert list(rows[0]) == columns(4)
    assert len(rows) == 2 * len(results["stimuli"])
    assert [(int(r["stimulus"]), r["fibre"]) for r in rows] == [
        (i, f) for i in range(len(results["stimuli"])) for f in ("mgf", "lgf")
    ]
    for row in rows:
        stim = results["stimuli"][int(row["stimulus"])]
        assert int(row["sample"]) == stim["sample"]
        assert float(row["duration_s"]) == stim["parameters"]["duration_s"]
        assert row["analysed"] == ("1" if stim["analysed"] else "0")
        clean = {v["fibre"]: v for v in stim["volleys"]}
        suspect = {v["fibre"] for v in stim["suspect_volleys"]}
        volley = clean.get(row["fibre"])
        assert row["recruited"] == ("1" if volley else "0")
        assert row["suspect"] == ("1" if row["fibre"] in suspect else "0")
        if volley:
            assert (
                float(row["conduction_velocity_m_per_s"])
                == (volley["conduction_velocity_m_per_s"])
            )
            latency = [float(row[f"latency_s_ch{k}"]) if row[f"latency_s_ch{k}"]
                       else None for k in range(4)]  # fmt: skip
            assert latency == volley["latency_s"]
        else:  # a suspect volley's numbers are not in the table
            assert row["conduction_velocity_m_per_s"] == "" == row["latency_s_ch1"]


def test_the_table_holds_exactly_the_sweeps_the_statistics_count(outputs):
    results, rows, _ = outputs
    assert any(r["suspect"] == "1" for r in rows)  # the case is exercised
    assert any(r["analysed"] == "0" for r in rows)
    for fibre, summary in results["fibres"].items():
        v = [float(r["conduction_velocity_m_per_s"]) for r in rows
             if r["fibre"] == fibre and r["recruited"] == "1"]  # fmt: skip
        assert len(v) == summary["n"]
        assert np.median(v) == pytest.approx(summary["median_all"], rel=1e-12)
        n_suspect = sum(r["fibre"] == fibre and r["suspect"] == "1" for r in rows)
        assert n_suspect == summary["n_suspect"]


OCTAVE_SCRIPT = """
s = load('{path}');
r = jsondecode(s.results_json);
out = struct();
out.fibre = s.table.fibre';
out.velocity = s.table.conduction_velocity_m_per_s';
out.recruited = s.table.recruited';
out.latency_ch1 = s.table.latency_s_ch1';
out.sample = s.stimuli.sample';
out.latency = s.stimuli.latency_s;
out.mgf_median = s.fibres.mgf.median;
out.lgf_reason = s.fibres.lgf.reason;
out.headline = s.conduction_velocity_m_per_s.median;
out.positions = s.channels.position_mm';
out.json_n_stimuli = numel(r.stimuli);
printf('%s\\n', jsonencode(out));
"""


def test_octave_loads_the_mat_file(outputs):
    results, rows, mat = outputs
    octave = shutil.which("octave-cli") or shutil.which("octave")
    if octave is None:
        pytest.skip("GNU Octave is not installed (scripts/install-system-deps.sh)")
    done = subprocess.run(
        [octave, "--no-gui", "--quiet", "--no-window-system", "--eval",
         OCTAVE_SCRIPT.format(path=mat)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    got = json.loads(line)
    assert got["fibre"] == [r["fibre"] for r in rows]
    as_number = [float(r["conduction_velocity_m_per_s"]) if r["conduction_velocity_m_per_s"]
                 else None for r in rows]  # fmt: skip
    assert got["velocity"] == as_number  # NaN in MATLAB, null in its JSON
    assert got["recruited"] == [int(r["recruited"]) for r in rows]
    assert got["sample"] == [s["sample"] for s in results["stimuli"]]
    first = results["stimuli"][0]["latency_s"]
    assert got["latency"][0] == first
    assert got["mgf_median"] == results["fibres"]["mgf"]["median"]
    assert got["headline"] == results["conduction_velocity_m_per_s"]["median"]
    assert got["positions"] == [c["position_mm"] for c in results["channels"]]
    assert got["json_n_stimuli"] == len(results["stimuli"])


def test_scipy_reads_the_same_structs(outputs):
    from scipy.io import loadmat

    results, rows, mat = outputs
    data = loadmat(mat, squeeze_me=True, simplify_cells=True)
    assert list(data["table"]["fibre"]) == [r["fibre"] for r in rows]
    assert json.loads(data["results_json"]) == results
    assert data["fibres"]["lgf"]["determined"] == results["fibres"]["lgf"]["determined"]


def test_a_folder_as_csv_or_mat_is_refused_before_the_analysis(tmp_path):
    for option in ("--csv", "--mat"):
        out = subprocess.run(
            [sys.executable, "-m", "rig.cli", "analyze", str(tmp_path), option,
             str(tmp_path)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert out.returncode == 2
        assert f"{option} {tmp_path} is a folder; allowed: a file name" in out.stderr
