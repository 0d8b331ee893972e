"""`neurorig analyze` on recordings and Spike Recorder WAVs we write ourselves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.sim import RacewayGeometry, WormModel, WormParams, to_adc_counts
from rig.offline.spike_recorder import (
    SpikeRecorderError,
    read_spike_recorder,
    write_spike_recorder,
)

ROOT = Path(__file__).resolve().parents[2]
FS = 20_000


def neurorig(*args):
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args, "--quiet"]
        if args[0] == "analyze"
        else [sys.executable, "-m", "rig.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def spike_recorder_pair(folder: Path, velocity=20.0):
    """A WAV + events pair as Spike Recorder writes it, from a simulated worm."""
    # Spikes start under the cathode, electrode 0: at 8 mm here, where this test
    # has always started them (the old pair's centre), so that every pair's
    # spike at 20 m/s stays clear of the 3 ms pulse's artifact as before.
    geometry = RacewayGeometry(stim_electrodes_m=(0.008, 0.012))
    model = WormModel(
        WormParams(
            mgf_velocity_m_per_s=velocity,
            lgf_velocity_m_per_s=velocity / 2,
            habituation_per_stimulus=0.0,
        ),
        geometry,
        fs_hz=FS,
        seed=8,
    )
    onsets = [FS // 2 + k * FS for k in range(8)]
    for onset in onsets:
        model.stimulate(onset, 4.0, 3e-3)
    counts = to_adc_counts(model.render(0, onsets[-1] + FS // 2), gain=1000)
    wav = folder / "worm.wav"
    write_spike_recorder(wav, counts, FS, [("1", o / FS) for o in onsets])
    uv_per_count = 5.0 / 65536 / 1000 * 1e6
    return wav, geometry.pair_centres_m() * 1000, uv_per_count


def test_spike_recorder_files_round_trip(tmp_path):
    samples = (np.arange(40, dtype=np.int16) - 20).reshape(10, 4)
    write_spike_recorder(tmp_path / "a.wav", samples, 10_000, [("3", 0.25), ("4", 0.5)])
    data = read_spike_recorder(tmp_path / "a.wav")
    np.testing.assert_array_equal(data.samples, samples)
    assert data.sample_rate_hz == 10_000
    assert data.marker_ids == ["3", "4"]
    np.testing.assert_allclose(data.marker_times_s, [0.25, 0.5])
    (tmp_path / "a-events.txt").write_text("# header\n1,\tsoon\n")
    with pytest.raises(
        SpikeRecorderError, match="line 2 .* is not 'MARKER_ID,<tab>TIME_S'"
    ):
        read_spike_recorder(tmp_path / "a.wav")


def test_analyze_wav_measures_the_conduction_velocity(tmp_path):
    wav, positions_mm, uv_per_count = spike_recorder_pair(tmp_path, velocity=20.0)
    out = neurorig(
        "analyze",
        str(wav),
        "--electrode-positions-mm",
        ",".join(f"{p:g}" for p in positions_mm),
        "--uv-per-count",
        str(uv_per_count),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    cv = results["conduction_velocity_m_per_s"]
    assert cv["median"] == pytest.approx(20.0, rel=0.03)
    assert cv["n_stimuli"] == 8 and cv["ci95"][0] <= cv["median"] <= cv["ci95"][1]
    assert [c["position_mm"] for c in results["channels"]] == pytest.approx(
        positions_mm
    )
    assert all(c["response_probability"] == 1.0 for c in results["channels"])
    assert results["stimuli"][0]["time_s"] == pytest.approx(0.5)


def test_wav_without_positions_is_refused_with_the_option_named(tmp_path):
    wav, _, _ = spike_recorder_pair(tmp_path)
    out = neurorig("analyze", str(wav))
    assert out.returncode == 2
    assert "--electrode-positions-mm" in out.stderr


def test_analyze_recording_writes_json_and_report(tmp_path):
    proto = tmp_path / "p.toml"
    proto.write_text(
        "format_version = 1\n[protocol]\nname = 'p'\nseed = 2\n[[block]]\n"
        "amplitude_vpp = [2.2, 2.9, 3.3, 5.0]\nduration_ms = [2.0, 6.0]\n"
        "order = 'random'\ninter_stimulus_interval_s = 0.5\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig.cli",
            "run",
            str(proto),
            "--sim",
            "--camera",
            "sim",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    folder = run.stdout.strip().splitlines()[-1].removeprefix("recording: ")
    out = neurorig(
        "analyze",
        folder,
        "--json",
        str(tmp_path / "r.json"),
        "--report",
        str(tmp_path / "report"),
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["motion"]["tracked"] is True
    assert len(results["stimuli"]) == 8
    assert {
        "time_s",
        "parameters",
        "responded",
        "latency_s",
        "conduction_velocity_m_per_s",
        "peak_displacement_mm",
    } <= set(results["stimuli"][0])
    assert len(results["parameter_map"]) == 8
    responded = [s for s in results["stimuli"] if s["responded"]]
    truth = {"mgf": 30.0, "lgf": 15.0}  # the simulated worm's fibres
    volleys = [v for s in responded for v in s["volleys"]]
    assert responded and all(
        v["conduction_velocity_m_per_s"] == pytest.approx(truth[v["fibre"]], rel=0.03)
        for v in volleys
    )
    # A responder's twitch is measured where its frames are proven; a loaded
    # machine starves the simulated camera and leaves some unproven (None,
    # with the reason in motion): those are not measured, never a wrong 0.
    moved = [s["peak_displacement_mm"] for s in responded]
    measured = [m for m in moved if m is not None]
    assert len(measured) >= len(moved) / 2 and min(measured) > 0.2
    index = (tmp_path / "report" / "index.html").read_text()
    assert "overlays-mgf.png" in index and "motion.png" in index
    assert (tmp_path / "report" / "maps.png").stat().st_size > 10_000


def _strip_alignment(folder: Path, into: Path) -> Path:
    """A copy of ``folder`` as a recording made without the LED code in view
    (or before the optical sync): no alignment record, no evidence for one,
    every frame stamped by arrival time."""
    import shutil

    shutil.copytree(folder, into)
    meta_path = into / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("frame_alignment", None)
    meta.pop("optical_sync", None)
    meta_path.write_text(json.dumps(meta))
    table = into / "frame_samples.csv"
    rows = table.read_text().splitlines()
    table.write_text(
        "\n".join([rows[0], *(r.replace(",led_code,", ",trigger,") for r in rows[1:])])
        + "\n"
    )
    return into


def test_motion_needs_a_proven_alignment_or_an_explicit_opt_in(tmp_path):
    proto = tmp_path / "p.toml"
    proto.write_text(
        "format_version = 1\n[protocol]\nname = 'p'\nseed = 3\n[[block]]\n"
        "amplitude_vpp = [4.0]\nduration_ms = [3.0]\nrepeats = 4\n"
        "inter_stimulus_interval_s = 0.5\n"
    )
    run = neurorig(
        "run", str(proto), "--sim", "--camera", "sim", "--out", str(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip().splitlines()[-1].removeprefix("recording: "))

    def analyze(path: Path, name: str, *extra: str):
        out = neurorig(
            "analyze", str(path), "--json", str(tmp_path / f"{name}.json"),
            "--report", str(tmp_path / name), *extra,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        results = json.loads((tmp_path / f"{name}.json").read_text())
        page = (tmp_path / name / "index.html").read_text()
        return out, results["motion"], page

    # Proven by the LED code: motion measured from the frames it placed.
    out, motion, page = analyze(folder, "proven")
    assert motion["tracked"] is True
    assert motion["alignment"]["proven"] is True
    assert motion["alignment"]["method"] == "frame_numbers+led_code"
    assert "unproven" not in out.stderr and "class='unproven'" not in page

    # Unproven (no alignment record): refused, and said on the console, in
    # the JSON and in the report.
    plain = _strip_alignment(folder, tmp_path / "plain")
    out, motion, page = analyze(plain, "refused")
    assert motion["tracked"] is False
    assert motion["alignment"]["proven"] is False
    assert "no frame_alignment" in motion["alignment"]["reason"]
    assert "motion not measured" in out.stderr
    assert "--accept-unproven-alignment" in out.stderr
    assert "<b>not measured</b>" in page

    # Accepted on purpose: measured, flagged everywhere.
    out, motion, page = analyze(plain, "accepted", "--accept-unproven-alignment")
    assert motion["tracked"] is True
    assert motion["alignment"]["proven"] is False
    assert motion["alignment"]["unproven_accepted"] is True
    assert "warning: motion measured from frames whose alignment" in out.stderr
    assert "<b>unproven</b>" in page
