"""The session level through ``open_rig(port)``, as a user runs a board: start,
stimulate, record, reopen the recording, find the stimulus in it."""

from __future__ import annotations

import time

import numpy as np

import rig.recording
from firmware_bridge import StimPulse
from rig.core.connect import open_rig
from rig.recording import RecordingWriter


def test_a_stimulus_recorded_through_open_rig_is_in_the_reopened_recording(
    board_port, tmp_path
):
    with open_rig(board_port, timeout_s=2.0) as session:
        assert not session.rig.simulated  # a port is a board, whatever serves it
        session.start()
        session.start_recording(
            RecordingWriter.create(
                tmp_path / "run",
                n_channels=session.n_channels,
                sample_rate_hz=session.sample_rate_hz,
                metadata={"test": "behaviour"},
            )
        )
        session.arm()
        onset = session.stimulate(StimPulse(3.0, 3e-3))
        time.sleep(0.3)
        session.stop()
        session.stop_recording()
    rec = rig.recording.open(tmp_path / "run")
    [stim] = rec.events_of("stim_delivered")
    assert stim["sample"] == onset
    assert stim["commanded_vpp"] == 3.0 and stim["duration_s"] == 3e-3
    assert rec.status == "completed" and rec.problems == []
    numbers = rec.sample_numbers()
    assert numbers[0] < onset < numbers[-1]  # recorded around the stimulus
    assert np.all(np.diff(numbers) == 1) and len(rec.gaps) == 0
    assert rec.metadata["samples_lost"] == 0
    assert rec.samples.shape == (rec.metadata["n_rows"], session.n_channels)
