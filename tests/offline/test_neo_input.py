"""`neurorig analyze` on files neo reads: the Open Ephys export (a round trip that
must give the native recording's velocities) and an EDF+ file written by
pyedflib (another library, another format), each against a simulated worm whose
fibres conduct at known speeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rig.recording
from rig.export.openephys import export_openephys
from rig.offline.neo_input import NeoInputError, load_neo
from rig.recording import schemas
from tests.offline._recordings import FS, LGF_M_PER_S, MGF_M_PER_S, worm_recording

pytest.importorskip("neo")
ROOT = Path(__file__).resolve().parents[2]


def analyze(path, *args):
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "analyze", str(path), "--quiet", *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    return out


def positions(worm):
    return ",".join(f"{p:g}" for p in worm.positions_mm)


def velocities(results):
    """Per stimulus: (sample, analysed, each volley's fibre and velocity)."""
    return [
        (
            s["sample"],
            s["analysed"],
            [(v["fibre"], v["conduction_velocity_m_per_s"]) for v in s["volleys"]],
            [
                (v["fibre"], v["conduction_velocity_m_per_s"])
                for v in s["suspect_volleys"]
            ],
        )
        for s in results["stimuli"]
    ]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """The native recording and its Open Ephys export, each analysed by the CLI
    with the same electrode positions."""
    folder = tmp_path_factory.mktemp("roundtrip")
    worm = worm_recording(folder / "rec")  # a gap across the sixth stimulus
    export_openephys(worm.path, folder / "oe")
    results = {}
    for name, path in (("native", worm.path), ("openephys", folder / "oe")):
        out = analyze(
            path, "--electrode-positions-mm", positions(worm),
            "--json", str(folder / f"{name}.json"),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        results[name] = json.loads((folder / f"{name}.json").read_text())
        assert schemas.problems(results[name], "analysis") == []
    return worm, folder, results


def test_analyze_on_the_openephys_export_gives_the_native_velocities(round_trip):
    worm, _, results = round_trip
    native, exported = results["native"], results["openephys"]
    assert velocities(exported) == velocities(native)  # to the last bit
    assert exported["fibres"] == native["fibres"]
    assert (
        exported["conduction_velocity_m_per_s"] == native["conduction_velocity_m_per_s"]
    )
    assert exported["channels"] == native["channels"]
    # ... and they are the worm's: both fibres determined, at their speeds.
    assert native["fibres"]["mgf"]["median"] == pytest.approx(MGF_M_PER_S, rel=0.01)
    assert native["fibres"]["lgf"]["median"] == pytest.approx(LGF_M_PER_S, rel=0.01)
    # The stimulus whose epoch lost samples is not analysed, either way.
    lost = [s["sample"] for s in exported["stimuli"] if not s["analysed"]]
    assert lost == [worm.onsets[5]]
    # The TTL's on/off gives each stimulus its duration.
    assert [s["duration_s"] for s in exported["stimuli"]] == pytest.approx(
        worm.durations_s, abs=1e-12
    )


def test_the_native_recordings_own_positions_give_the_same_velocities(round_trip):
    worm, folder, results = round_trip
    out = analyze(worm.path, "--json", str(folder / "own.json"))
    assert out.returncode == 0, out.stderr
    own = json.loads((folder / "own.json").read_text())
    for mine, theirs in zip(velocities(own), velocities(results["openephys"])):
        assert mine[:2] == theirs[:2]
        assert [f for f, _ in mine[2]] == [f for f, _ in theirs[2]]
        # metres from the metadata vs mm from the option: the last bit only
        assert [v for _, v in mine[2]] == pytest.approx(
            [v for _, v in theirs[2]], rel=1e-12
        )


def write_edf(path: Path, worm) -> None:
    """The worm recording's counts as EDF+ (pyedflib), its stimuli as annotations
    with their durations, and a note that is not a stimulus."""
    pyedflib = pytest.importorskip("pyedflib")
    counts = np.asarray(rig.recording.open(worm.path).samples)
    counts = np.vstack([counts, np.zeros((-len(counts) % FS, 4), np.int16)])
    writer = pyedflib.EdfWriter(str(path), 4, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.set_number_of_annotation_signals(4)  # room for 2 a second, and more
        writer.setSignalHeaders(
            [
                {
                    "label": f"pair{k}",
                    "dimension": "uV",
                    "sample_frequency": FS,
                    # EDF keeps 8 characters of the range: the gain is near ours
                    "physical_max": round(32767 * uv, 3),
                    "physical_min": round(-32768 * uv, 3),
                    "digital_max": 32767,
                    "digital_min": -32768,
                    "transducer": "",
                    "prefilter": "",
                }
                for k, uv in enumerate(worm.uv_per_count)
            ]
        )
        writer.writeSamples(
            [counts[:, k].astype(np.int32) for k in range(4)], digital=True
        )
        for onset, duration in zip(worm.onsets, worm.durations_s, strict=True):
            writer.writeAnnotation(onset / FS, duration, "stim")
        writer.writeAnnotation(1.25, 0.5, "note")
    finally:
        writer.close()


def test_analyze_reads_an_edf_file_written_by_pyedflib(tmp_path):
    worm = worm_recording(tmp_path / "rec", first_sample=0, gap=False)
    edf = tmp_path / "worm.edf"
    write_edf(edf, worm)
    native = analyze(
        worm.path, "--electrode-positions-mm", positions(worm),
        "--json", str(tmp_path / "native.json"),
    )  # fmt: skip
    assert native.returncode == 0, native.stderr
    out = analyze(
        edf, "--electrode-positions-mm", positions(worm),
        "--stimulus-channel", "Epoch", "--stimulus-markers", "stim",
        "--json", str(tmp_path / "edf.json"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "1 events of 'Epoch' are not stimuli" in out.stderr  # the note
    edf_results = json.loads((tmp_path / "edf.json").read_text())
    native_results = json.loads((tmp_path / "native.json").read_text())
    assert schemas.problems(edf_results, "analysis") == []
    assert [s["sample"] for s in edf_results["stimuli"]] == worm.onsets
    for fibre, truth in (("mgf", MGF_M_PER_S), ("lgf", LGF_M_PER_S)):
        got = edf_results["fibres"][fibre]
        assert got["determined"], got
        assert got["median"] == pytest.approx(truth, rel=0.01)
        # EDF keeps the gain to 8 characters, and its annotations, having no
        # sample numbers, are searched as widely as Spike Recorder markers: a
        # borderline sweep's timing may be judged otherwise, the answer agrees
        # to 0.2 % (measured: MGF 30.05 m/s from 7 sweeps vs 30.02 from 6).
        mine = native_results["fibres"][fibre]
        assert got["median"] == pytest.approx(mine["median"], rel=2e-3)
        assert abs(got["n"] - mine["n"]) <= 1


def test_choices_are_asked_for_in_one_line(tmp_path):
    worm = worm_recording(tmp_path / "rec", n_stimuli=2, first_sample=0, gap=False)
    write_edf(tmp_path / "worm.edf", worm)
    mm = positions(worm)
    with pytest.raises(
        NeoInputError, match="2 event channels; name the one .* 'Epoch'"
    ):
        load_neo(tmp_path / "worm.edf", electrode_positions_mm=mm)
    with pytest.raises(NeoInputError, match="--stimulus-channel 'TTL'.*allowed"):
        load_neo(
            tmp_path / "worm.edf", electrode_positions_mm=mm, stimulus_channel="TTL"
        )
    with pytest.raises(NeoInputError, match="carries no electrode geometry"):
        load_neo(tmp_path / "worm.edf", electrode_positions_mm=None)
    with pytest.raises(ValueError, match="4 channels"):
        load_neo(
            tmp_path / "worm.edf", electrode_positions_mm="10,20",
            stimulus_channel="Epoch",
        )  # fmt: skip
    source = load_neo(
        tmp_path / "worm.edf", electrode_positions_mm="10,20",
        stimulus_channel="Epoch", stimulus_markers="stim", channels="pair1,3",
    )  # fmt: skip
    assert source.n_channels == 2 and len(source.stimuli) == 2
    with pytest.raises(NeoInputError, match="no stimuli in event channel 'Epoch' with "
                       "labels zap .*'note', 'stim'"):  # fmt: skip
        load_neo(
            tmp_path / "worm.edf", electrode_positions_mm=mm,
            stimulus_channel="Epoch", stimulus_markers="zap",
        )  # fmt: skip
    with pytest.raises(NeoInputError, match="--channels: 'pair9' is not a channel"):
        load_neo(tmp_path / "worm.edf", electrode_positions_mm=mm, channels="pair9")


def test_files_no_reader_knows_are_refused_in_one_line(tmp_path):
    (tmp_path / "data.xyz").write_text("hello")
    out = analyze(tmp_path / "data.xyz", "--electrode-positions-mm", "1,2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "nor a format neo recognises" in out.stderr
    for folder_args in ((), ("--electrode-positions-mm", "1,2")):  # an empty folder
        out = analyze(tmp_path, *folder_args)
        assert out.returncode == 2 and "not a neurorig recording" in out.stderr
        assert "(no metadata.json)" in out.stderr
    (tmp_path / "bad.edf").write_bytes(b"0       not an EDF header")
    out = analyze(tmp_path / "bad.edf", "--electrode-positions-mm", "1,2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "neo's EDFRawIO could not read it" in out.stderr
    assert "Traceback" not in out.stderr
