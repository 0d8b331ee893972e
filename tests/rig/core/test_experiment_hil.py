"""An experiment (rig.core.experiment) over the simulated rig's pseudo-terminal:
a protocol run recorded into its own new folder, as the CLI and GUI do it."""

from __future__ import annotations

import pytest

import rig.recording
from rig.core.connect import open_rig
from rig.core.experiment import Experiment, new_recording
from rig.protocols import parse_protocol

SHORT = """format_version = 1
[protocol]
name = "short"
seed = 2
[[block]]
amplitude_vpp = [3.0, 5.0]
duration_ms = 3.0
inter_stimulus_interval_s = 0.3
"""

# 60 pulses at 50 Hz: the board is still pulsing 1.2 s after the command,
# longer than the fixed 1 s tail that used to cut the last pulses off.
TRAIN = """format_version = 1
[protocol]
name = "long train"
seed = 2
[[block]]
amplitude_vpp = 4.0
duration_ms = 3.0
n_pulses = 60
train_rate_hz = 50.0
inter_stimulus_interval_s = 2.0
"""


@pytest.fixture
def session():
    session = open_rig("sim://?seed=7")
    session.start()
    yield session
    session.close()


def test_an_experiment_records_its_protocol_into_a_new_folder(session, tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    experiment = Experiment(
        session, parse_protocol(SHORT), out_root=tmp_path / "runs", protocol_path=path
    )
    experiment.start()
    result = experiment.wait(20)
    assert result is not None and result.ok, result
    assert result.folder is not None and result.folder.parent == tmp_path / "runs"
    rec = rig.recording.open(result.folder)
    assert rec.status == "completed"
    assert [e["amplitude_vpp"] for e in rec.events_of("trial")] == [3.0, 5.0]
    assert (result.folder / "attachments" / "short.toml").read_text() == SHORT
    # The baseline before the first stimulus and the tail after the last.
    first, last = (
        rec.events_of("stim_delivered")[0],
        rec.events_of("stim_delivered")[-1],
    )
    numbers = rec.sample_numbers()
    assert first["sample"] - numbers[0] >= 0.45 * rec.sample_rate_hz
    assert numbers[-1] - last["sample"] >= 0.95 * rec.sample_rate_hz


def test_a_long_trains_last_pulses_are_recorded(session, tmp_path):
    experiment = Experiment(session, parse_protocol(TRAIN), out_root=tmp_path)
    experiment.start()
    result = experiment.wait(20)
    assert result is not None and result.ok
    rec = rig.recording.open(result.folder)
    pulses = rec.events_of("stim_delivered")
    assert len(pulses) == 60  # the tail waited for the train to end
    assert rec.sample_numbers()[-1] - pulses[-1]["sample"] >= 0.95 * 30_000


def test_recordings_started_in_the_same_second_get_their_own_folders(session, tmp_path):
    writers = [new_recording(session, tmp_path) for _ in range(3)]
    folders = [w.folder for w in writers]
    for writer in writers:
        writer.close()
    assert len(set(folders)) == 3
    # The same second gives "-2" (unless the clock ticked over in between).
    stamp = folders[0].name
    assert folders[1].name == stamp + "-2" or folders[1].name[:15] != stamp


def test_a_refused_start_is_said_and_recorded_as_such(session, tmp_path):
    session.emergency_stop()  # holds until reset
    experiment = Experiment(session, parse_protocol(SHORT), out_root=tmp_path)
    experiment.start()
    result = experiment.wait(10)
    assert result is not None and not result.ok and not result.completed
    assert "emergency stop holds" in str(result.error)
    assert rig.recording.open(result.folder).events_of("experiment_refused")
