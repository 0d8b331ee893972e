"""A simulated recording exported to NWB (issue 19): the validators the field
uses accept it (nwbinspector with DANDI's configuration, ``dandi validate``
after ``dandi organize``), pynwb reads back the very samples, every stimulus
and the video's frame table, and SpikeInterface's NWB reader recovers the
gains and the electrode positions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rig.recording
from tests.export.conftest import GAIN_RATIO, INFO, NOTES, OFFSET_COUNTS, SUBJECT

pynwb = pytest.importorskip("pynwb")


def _read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def _runs(rec):
    """Each contiguous run's (rows, first sample number), read independently
    of the exporter from index.jsonl."""
    lines = [json.loads(x) for x in (rec.path / "index.jsonl").read_text().splitlines()]
    runs = [(x["row"], x["first_sample"]) for x in lines if x["kind"] == "run"]
    out = []
    for (row, first), (next_row, _) in zip(
        runs, [*runs[1:], (rec.samples.shape[0], None)], strict=True
    ):
        if next_row > row:
            out.append((slice(row, next_row), first))
    return out


def test_the_recording_has_what_the_export_must_carry(recording):
    rec = rig.recording.open(recording)
    assert len(_runs(rec)) >= 2, "the fixture's faults made no gap"
    assert len(rec.events_of("stim_delivered")) == 2
    assert [e["text"] for e in rec.events_of("note")] == list(NOTES)
    assert len(rec.frame_times) > 20
    assert rec.metadata["subject"] == SUBJECT.to_dict()
    assert rec.metadata["session"] == INFO.to_dict()


def test_nwbinspector_with_dandis_configuration_finds_no_critical_issue(exported):
    from nwbinspector import Importance, inspect_nwbfile, load_config

    path, _ = exported
    messages = list(
        inspect_nwbfile(
            nwbfile_path=path,
            config=load_config("dandi"),
            importance_threshold=Importance.CRITICAL,
        )
    )
    assert messages == [], [m.message for m in messages]


def test_nwbinspector_does_flag_a_file_without_a_subject(recording, tmp_path):
    """The same check run on an export whose recording lacks a subject: the
    DANDI configuration's critical checks fire (the validator is live)."""
    import shutil

    from nwbinspector import Importance, inspect_nwbfile, load_config

    from rig.export import export_nwb

    copy = tmp_path / "no-subject"
    shutil.copytree(recording, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["subject"] = {"subject_id": "worm-08"}
    (copy / "metadata.json").write_text(json.dumps(meta))
    result = export_nwb(copy, tmp_path / "x.nwb", analysis=False)
    assert any("DANDI refuses" in w for w in result.warnings)
    messages = list(
        inspect_nwbfile(
            nwbfile_path=tmp_path / "x.nwb",
            config=load_config("dandi"),
            importance_threshold=Importance.CRITICAL,
        )
    )
    checks = {m.check_function_name for m in messages}
    assert {"check_subject_sex", "check_subject_species_exists"} <= checks


def test_dandi_validate_after_organize_reports_no_error(exported, tmp_path):
    path, _ = exported
    dandiset = tmp_path / "dandiset"
    dandiset.mkdir()
    (dandiset / "dandiset.yaml").write_text(
        "identifier: DANDI:000000\nname: neurorig export test\n"
        "description: a simulated earthworm recording\n"
    )
    env = {**os.environ, "DANDI_NO_ET": "1"}  # no version check over the network
    dandi = [str(Path(sys.executable).parent / "dandi")]  # its console script
    organize = subprocess.run(
        [*dandi, "organize", "-f", "copy", "--update-external-file-paths",
         "--media-files-mode", "copy", str(path)],
        cwd=dandiset, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert organize.returncode == 0, organize.stderr
    [organized] = list(dandiset.glob("sub-worm-07/*.nwb"))
    assert organized.name == "sub-worm-07_behavior+ecephys+image.nwb"
    validate = subprocess.run(
        [*dandi, "validate", "."],
        cwd=dandiset, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "No errors found" in validate.stdout + validate.stderr
    # The organized copy still finds its video (the path was rewritten).
    io, nwb = _read(organized)
    with io:
        [external] = nwb.acquisition["video"].external_file[:]
        assert (organized.parent / external).is_file()


def test_pynwb_reads_back_bit_identical_samples(recording, exported):
    rec = rig.recording.open(recording)
    path, result = exported
    runs = _runs(rec)
    first = runs[0][1]
    fs = rec.sample_rate_hz
    nominal = rec.metadata["acquisition"]["volts_per_count_nominal"]
    io, nwb = _read(path)
    with io:
        series = [nwb.acquisition[f"ElectricalSeries_run{k}"] for k in range(len(runs))]
        assert result.n_series == len(runs)
        for s, (rows, first_sample) in zip(series, runs, strict=True):
            data = s.data[:]
            assert data.dtype == np.int16
            np.testing.assert_array_equal(data, rec.samples[rows])
            assert round(s.starting_time * fs) + first == first_sample
            assert s.rate == fs
            assert s.conversion == nominal
            np.testing.assert_allclose(s.channel_conversion[:], GAIN_RATIO, rtol=1e-6)
            assert s.data.compression == "gzip"
        electrodes = nwb.electrodes.to_dataframe()
        centres = rec.metadata["geometry"]["pair_centres_m"]
        np.testing.assert_allclose(electrodes["position_along_body_m"], centres)
        assert all("bipolar" in r for r in electrodes["reference"])


def test_pynwb_reads_back_every_stimulus_trial_and_note(recording, exported):
    rec = rig.recording.open(recording)
    path, _ = exported
    first = _runs(rec)[0][1]
    fs = rec.sample_rate_hz
    io, nwb = _read(path)
    with io:
        stimuli = nwb.events["stimuli"].to_dataframe()
        delivered = rec.events_of("stim_delivered")
        assert list(stimuli["sample"]) == [e["sample"] for e in delivered]
        np.testing.assert_array_equal(
            stimuli["timestamp"], [(e["sample"] - first) / fs for e in delivered]
        )
        for key in ("amplitude_vpp", "commanded_vpp", "requested_vpp"):
            assert list(stimuli[key]) == [e[key] for e in delivered]
        assert list(stimuli["duration"]) == [e["duration_s"] for e in delivered]
        for key in ("cathode", "polarity", "pulse_index"):
            assert list(stimuli[key]) == [e[key] for e in delivered]
        trials = nwb.trials.to_dataframe()
        assert list(trials["sample"]) == [e["sample"] for e in rec.events_of("trial")]
        assert list(trials["amplitude_vpp"]) == [4.0, 6.0]
        notes = nwb.events["notes"].to_dataframe()
        assert list(notes["annotation"]) == list(NOTES)
        assert list(notes["sample"]) == [e["sample"] for e in rec.events_of("note")]
        requested = nwb.events["stim_requested"].to_dataframe()
        assert len(requested) == len(rec.events_of("stim_requested")) == 2


def test_video_timestamps_equal_the_frame_table(recording, exported):
    rec = rig.recording.open(recording)
    path, _ = exported
    first = _runs(rec)[0][1]
    # The frame table read straight from its CSV (the last row of a frame wins).
    table = {}
    for line in (rec.path / "frame_samples.csv").read_text().splitlines()[1:]:
        index, sample, *_ = line.split(",")
        table[int(index)] = int(sample) if sample else None
    expected = np.array(
        [
            np.nan if table.get(k) is None else (table[k] - first) / rec.sample_rate_hz
            for k in range(len(rec.frame_times))
        ]
    )
    io, nwb = _read(path)
    with io:
        video = nwb.acquisition["video"]
        np.testing.assert_array_equal(video.timestamps[:], expected)
        [external] = video.external_file[:]
        assert (path.parent / external).resolve() == (rec.path / "video.mkv").resolve()
        assert video.format == "external"


def test_subject_session_protocol_and_software_are_in_the_file(recording, exported):
    rec = rig.recording.open(recording)
    path, _ = exported
    io, nwb = _read(path)
    with io:
        subject = nwb.subject
        assert (subject.subject_id, subject.species, subject.sex, subject.age) == (
            "worm-07", "Lumbricus terrestris", "O", "P60D/P120D",
        )  # fmt: skip
        assert subject.weight == "3.2 g"
        assert "hermaphrodite" in subject.description
        assert "body length 120 mm" in subject.description
        assert list(nwb.experimenter) == ["Darwin, Charles"]
        assert (nwb.lab, nwb.institution) == ("Worm lab", "Down House")
        assert nwb.session_description == INFO.description
        assert nwb.notes.startswith(INFO.notes)
        assert nwb.stimulus_notes.endswith(
            (rec.path / "attachments" / "export-test.toml").read_text()
        )
        generated = dict(nwb.was_generated_by[:])
        assert generated["neurorig (recording)"].startswith(
            rec.metadata["software"]["version"]
        )
        assert json.loads(nwb.data_collection)["subject"] == SUBJECT.to_dict()


def test_the_analysis_and_displacement_are_in_processing_modules(recording, exported):
    path, result = exported
    assert result.analysed
    io, nwb = _read(path)
    with io:
        responses = nwb.processing["ecephys"]["stimulus_responses"].to_dataframe()
        assert len(responses) == 2
        latency = np.stack(responses["latency_s"].to_numpy())
        assert latency.shape == (2, 4)
        responded = responses["responded"].to_numpy()
        assert responded.any()
        # Latency grows along the body where an AP propagated (head to tail).
        for row in latency[responded]:
            assert np.all(np.diff(row[np.isfinite(row)]) > 0)
        fibres = nwb.processing["ecephys"]["fibres"].to_dataframe()
        assert set(fibres["fibre"]) == {"mgf", "lgf"}
        moved = nwb.processing["behavior"]["BehavioralTimeSeries"][
            "segment_displacement"
        ]
        assert moved.unit == "m"
        assert moved.data.shape[1] == 5  # four regions and the whole body
        data_m, times_s = moved.data[:], moved.timestamps[:]
    # The offline pipeline's series (mm, at frames' board samples), in SI.
    from rig.offline.load import load_recording
    from rig.offline.pipeline import analyse

    class Bar:
        update = close = staticmethod(lambda *a: None)

    source = load_recording(recording)
    analyse(source, lambda it, desc, total=None: Bar() if it is None else it)
    t, series_mm = source.motion_series
    rec = rig.recording.open(recording)
    first = _runs(rec)[0][1]
    np.testing.assert_array_equal(data_m, series_mm / 1e3)
    expected_s = (np.rint(t * rec.sample_rate_hz) - first) / rec.sample_rate_hz
    np.testing.assert_allclose(times_s, expected_s, rtol=0, atol=1e-9)


def test_spikeinterface_recovers_gains_and_positions(recording, exported):
    se = pytest.importorskip("spikeinterface.extractors")
    rec = rig.recording.open(recording)
    path, _ = exported
    nominal_uv = rec.metadata["acquisition"]["volts_per_count_nominal"] * 1e6
    gain = rec.metadata["calibrations"]["gain"]
    si = se.read_nwb_recording(
        file_path=str(path), electrical_series_path="acquisition/ElectricalSeries_run0"
    )
    np.testing.assert_allclose(
        si.get_channel_gains(), GAIN_RATIO * nominal_uv, rtol=1e-6
    )
    np.testing.assert_allclose(
        si.get_channel_offsets(),
        -np.array(OFFSET_COUNTS) * np.array(gain["uv_per_count"]),
        rtol=1e-6,
    )
    centres_um = np.array(rec.metadata["geometry"]["pair_centres_m"]) * 1e6
    np.testing.assert_allclose(si.get_channel_locations()[:, 0], centres_um, rtol=1e-6)
    assert si.get_sampling_frequency() == rec.sample_rate_hz
    # Traces in µV as the gain calibration defines them (calibration.gain).
    rows = _runs(rec)[0][0]
    uv = si.get_traces(start_frame=0, end_frame=1000, return_in_uV=True)
    counts = np.asarray(rec.samples[rows][:1000], dtype=float)
    expected = (counts - OFFSET_COUNTS) * np.array(gain["uv_per_count"])
    np.testing.assert_allclose(uv, expected, rtol=1e-5, atol=1e-3)


def test_an_export_is_refused_in_one_line(recording, tmp_path):
    from rig.export import ExportError, export_nwb

    with pytest.raises(ExportError, match=r"allowed a file name ending in \.nwb"):
        export_nwb(recording, tmp_path / "out.h5")
    with pytest.raises(ExportError, match="no metadata.json"):
        export_nwb(tmp_path, tmp_path / "out.nwb")
    (tmp_path / "taken.nwb").write_bytes(b"")
    with pytest.raises(ExportError, match="exists; give another name or --overwrite"):
        export_nwb(recording, tmp_path / "taken.nwb")
    with pytest.raises(ExportError, match="does not exist"):
        export_nwb(recording, tmp_path / "missing" / "out.nwb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.nwb"]


def test_the_cli_exports_and_refuses(recording, tmp_path):
    from tests._cli import neurorig

    out = tmp_path / "cli.nwb"
    done = neurorig("export", str(recording), "--nwb", str(out), "--no-analysis")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"nwb: {out} (")
    assert "without the analysis" in done.stdout
    again = neurorig("export", str(recording), "--nwb", str(out))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"neurorig: error: {out} exists; give another name or --overwrite"
    ]
    missing = neurorig("export", str(tmp_path / "nope"), "--nwb", str(out))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert Path(out).stat().st_size > 0


def test_a_bare_recording_exports_and_says_what_is_missing(tmp_path):
    """No subject, geometry, stimuli or video: the samples still go out, and
    the warnings say what DANDI and the analysis lack."""
    import datetime as dt

    from rig.export import ExportError, export_nwb
    from rig.recording import RecordingWriter

    writer = RecordingWriter.create(
        tmp_path / "bare",
        n_channels=2,
        sample_rate_hz=1000,
        metadata={
            "created_utc": dt.datetime.now(dt.UTC).isoformat(),
            "acquisition": {"volts_per_count_nominal": 1e-6},
        },
    )
    counts = np.arange(-100, 100, dtype=np.int16).reshape(100, 2)
    writer.append_samples(10, counts)
    writer.close()
    result = export_nwb(tmp_path / "bare", tmp_path / "bare.nwb")
    assert (result.n_series, result.n_stimuli, result.n_frames) == (1, 0, 0)
    assert not result.analysed
    assert any("DANDI refuses" in w for w in result.warnings)
    assert "no analysis in the file: the recording has no electrode positions" in (
        " ".join(result.warnings)
    )
    io, nwb = _read(tmp_path / "bare.nwb")
    with io:
        np.testing.assert_array_equal(
            nwb.acquisition["ElectricalSeries"].data[:], counts
        )
        assert nwb.subject is None
    # A metadata.json edited by hand into a bad subject is refused in one line.
    meta_path = tmp_path / "bare" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["subject"] = {"species": "worm"}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ExportError, match=r"metadata.json subject.species = 'worm'"):
        export_nwb(tmp_path / "bare", tmp_path / "again.nwb")
