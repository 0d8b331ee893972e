"""A short simulated recording with everything an export carries: a gain
calibration, a subject and session, timestamped notes, stimuli and trials, a
video, and gaps (frames damaged on the wire); and its NWB export."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pytest

from calibration import CalibrationSet
from calibration.gain import GainCalibration
from firmware_bridge.sim import FaultPlan, SimulatedRig
from rig.core.experiment import new_recording
from rig.protocols import parse_protocol
from rig.recording.subject import SessionInfo, Subject
from tests._rigs import session_on

PROTOCOL = """format_version = 1
[protocol]
name = "export test"
seed = 3
[[block]]
amplitude_vpp = [4.0, 6.0]
duration_ms = 3.0
inter_stimulus_interval_s = 0.4
"""
SUBJECT = Subject(
    subject_id="worm-07",
    species="Lumbricus terrestris",
    sex="O",
    description="hermaphrodite; clitellate adult",
    age="P60D/P120D",
    weight_kg=0.0032,
    length_m=0.12,
)
INFO = SessionInfo(
    experimenter=("Darwin, Charles",),
    lab="Worm lab",
    institution="Down House",
    description="conduction velocity of the giant fibres",
    notes="raceway moistened with saline",
)
NOTES = ("worm settled", "twitch seen at the tail")
# A gain calibration as `neurorig calibrate gain` would fit it: each channel's
# scale a little off the nominal, a small offset.
GAIN_RATIO = np.array([1.02, 0.97, 1.01, 0.99])
OFFSET_COUNTS = [3.0, -2.0, 0.0, 1.5]


def _calibrations(nominal_uv: float) -> CalibrationSet:
    gain = GainCalibration(
        uv_per_count=list(GAIN_RATIO * nominal_uv),
        offset_counts=OFFSET_COUNTS,
        noise_uv_rms=[2.0] * 4,
        test_amplitude_uvpp=1000.0,
        test_frequency_hz=1000.0,
        fitted_at=dt.datetime.now(dt.UTC).isoformat(),
        rig_id="sim",
        residual_rms=2.0,
        n_measurements=30000,
    )
    return CalibrationSet({"gain": gain}, [])


def _n_runs(folder: Path) -> int:
    """Contiguous runs in a recording's index so far (a gap starts one)."""
    lines = (folder / "index.jsonl").read_text(encoding="utf-8").split("\n")
    # (the last piece may be a line still being written: not counted)
    return sum(json.loads(line)["kind"] == "run" for line in lines[:-1] if line)


@pytest.fixture(scope="package")
def recording(tmp_path_factory):
    """The recording's folder."""
    root = tmp_path_factory.mktemp("export")
    protocol_path = root / "export-test.toml"
    protocol_path.write_text(PROTOCOL)
    simulator = SimulatedRig(
        seed=21, faults=FaultPlan(seed=21, frame_truncate_rate=0.1)
    )
    simulator.faults.enabled = False
    nominal_uv = 5.0 / 2**16 / 1000 * 1e6  # the simulated board's ADC at gain 1000
    session = session_on(
        simulator, camera=simulator.camera(), calibrations=_calibrations(nominal_uv)
    )
    try:
        session.subject, session.session_info = SUBJECT, INFO
        session.start()
        writer = new_recording(session, root / "runs", protocol_path=protocol_path)
        session.start_recording(writer)
        time.sleep(0.3)  # a baseline before the first stimulus
        session.note(NOTES[0])
        plan = parse_protocol(PROTOCOL).expand()
        status = session.run_protocol(plan.trials, wait=True)
        assert status.finish_reason == "completed", status
        session.note(NOTES[1])
        time.sleep(0.6)  # the last twitch
        simulator.faults.enabled = True  # frames damaged on the wire: gaps
        # Until the recording has a gap (a second run in its index), not for
        # a fixed time: on a loaded machine a 0.5 s window once damaged no
        # data frame and the tests below failed (CI, 2026-12-06).
        deadline = time.monotonic() + 10.0
        time.sleep(0.5)
        while _n_runs(writer.folder) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        simulator.faults.enabled = False
        time.sleep(0.2)
        session.stop_recording()
    finally:
        session.close()
    return writer.folder


@pytest.fixture(scope="package")
def exported(recording, tmp_path_factory):
    """(the NWB file, what export_nwb said)."""
    from rig.export import export_nwb

    out = tmp_path_factory.mktemp("nwb") / "worm-07.nwb"
    return out, export_nwb(recording, out)
