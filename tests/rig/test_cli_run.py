"""`neurorig run`: dry run, invalid files, and a real short run on the simulated rig."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rig.recording
from calibration import fit_stimulator, save_calibration
from firmware_bridge.sim import delivered_vpp
from tests._cli import ROOT, SHORT, neurorig


def test_dry_run_prints_the_plan_and_sends_nothing():
    out = neurorig("run", "protocols/mapping.toml", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "60 stimuli" in out.stdout and "total duration 0 min 59.0 s" in out.stdout
    assert "total charge estimate" in out.stdout


def test_invalid_protocol_is_refused_with_field_and_range(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SHORT.replace("[3.0, 5.0]", "[3.0, 9.0]"))
    out = neurorig("run", str(bad), "--sim")
    assert out.returncode == 2
    assert "amplitude_vpp = 9 exceeds the rig's safety limit" in out.stderr
    assert "Nothing was sent to the board." in out.stderr


def test_run_on_the_simulated_rig_records_every_stimulus(tmp_path):
    proto = tmp_path / "short.toml"
    proto.write_text(SHORT)
    cal_dir = tmp_path / "cal"
    commanded = np.linspace(1.0, 6.0, 11)
    save_calibration(
        fit_stimulator(commanded, [delivered_vpp(c) for c in commanded], rig_id="t"),
        cal_dir,
    )
    out = neurorig(
        "run", str(proto), "--sim", "--camera", "sim", "--out", str(tmp_path),
        "--calibrations", str(cal_dir),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # Missing calibrations are warned about, and recorded.
    assert "warning: gain: no calibration" in out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    rec = rig.recording.open(folder)
    assert rec.status == "completed"
    stimuli = rec.events_of("stim_delivered")
    assert len(stimuli) == 2
    # The stimulator calibration corrects each command so the worm gets what the
    # protocol asked for; the request is recorded beside command and delivery.
    for stim, asked in zip(stimuli, (3.0, 5.0)):
        assert stim["requested_vpp"] == asked
        assert stim["commanded_vpp"] > asked
        assert stim["amplitude_vpp"] == pytest.approx(asked, abs=0.005)
    calibrations = rec.metadata["calibrations"]
    assert calibrations["stimulator"]["kind"] == "stimulator"
    assert any(w.startswith("camera: no calibration") for w in calibrations["warnings"])
    assert rec.metadata["samples_lost"] == 0
    assert "short.toml" in rec.attachments
    assert (folder / "ground_truth.json").exists()
    assert len(rec.frame_times) > 20


def test_missing_camera_is_a_clear_error(tmp_path):
    proto = tmp_path / "short.toml"
    proto.write_text(SHORT)
    out = neurorig("run", str(proto), "--sim", "--camera", str(tmp_path / "nope.avi"))
    assert out.returncode == 2
    assert "video file" in out.stderr and "does not exist" in out.stderr


CLOSED = """format_version = 1
[protocol]
name = "cl"
seed = 4
[closed_loop]
strategy = "bayesian"
n_stimuli = 4
inter_stimulus_interval_s = 0.3
[closed_loop.objective]
measure = "amplitude_uv[1]"
"""


def test_closed_loop_protocol_runs_and_records_its_decisions(tmp_path):
    proto = tmp_path / "cl.toml"
    proto.write_text(CLOSED)
    dry = neurorig("run", str(proto), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "closed loop, strategy bayesian" in dry.stdout
    assert "maximise amplitude_uv[1]" in dry.stdout
    out = neurorig("run", str(proto), "--sim", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "closed loop: best" in out.stdout
    folder = Path(out.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    rec = rig.recording.open(folder)
    assert len(rec.events_of("optimiser")) == 4
    assert len(rec.events_of("stim_delivered")) == 4


def test_closed_loop_errors_name_the_field_and_what_is_allowed(tmp_path):
    proto = tmp_path / "bad.toml"
    proto.write_text(CLOSED.replace("amplitude_uv[1]", "twitchiness"))
    out = neurorig("run", str(proto), "--dry-run")
    assert out.returncode == 2
    assert "closed_loop.objective.measure" in out.stderr
    assert "'twitchiness' is not one of: amplitude_uv_mean" in out.stderr
    unsafe = CLOSED.replace("strategy", "amplitude_vpp = [2.0, 9.0]\nstrategy")
    proto.write_text(unsafe)
    out = neurorig("run", str(proto), "--sim")
    assert out.returncode == 2
    assert "amplitude_vpp = 9 exceeds the rig's safety limit" in out.stderr
    assert "Nothing was sent to the board." in out.stderr


def test_a_twitch_objective_without_a_camera_is_refused_before_recording(tmp_path):
    dry = neurorig("run", str(ROOT / "protocols/closed-loop-twitch.toml"), "--dry-run")
    assert "needs the camera with live segment tracking" in dry.stdout
    out = neurorig(
        "run", str(ROOT / "protocols/closed-loop-twitch.toml"), "--sim",
        "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert out.returncode == 2
    assert "'peak_displacement_mm' needs live segment tracking" in out.stderr
    assert "--camera" in out.stderr
    assert not (tmp_path / "runs").exists()  # no half-made recording left behind


def test_a_board_on_a_port_runs_a_closed_loop_with_its_rig_file(tmp_path):
    from rig.procedures.latency import external_simulator

    proto = tmp_path / "cl.toml"
    proto.write_text(CLOSED)
    with external_simulator(seed=3) as port:  # a board the host knows only by port
        bare = neurorig("run", str(proto), "--port", port, "--out", str(tmp_path))
        assert bare.returncode == 2
        assert "no electrode positions" in bare.stderr  # the setup warning
        assert "a closed loop needs the online analysis" in bare.stderr
        rig_file = str(ROOT / "rigs" / "example-rig.toml")
        out = neurorig(
            "run", str(proto), "--port", port, "--rig", rig_file, "--out", str(tmp_path)
        )
    assert out.returncode == 0, out.stderr
    assert "0 responses missed" in out.stdout
    folder = Path(out.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    rec = rig.recording.open(folder)
    assert rec.metadata["simulated"] is False
    geometry = rec.metadata["geometry"]
    assert geometry["pair_centres_m"] == pytest.approx([0.0375, 0.0575, 0.0775, 0.0975])
    assert geometry["source"] == rig_file
    # The recording carries its geometry: analysis needs no positions option.
    analysed = neurorig("analyze", str(folder), "--json", str(tmp_path / "a.json"))
    assert analysed.returncode == 0, analysed.stderr
