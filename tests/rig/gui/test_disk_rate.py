"""The recording panel's disk space: minutes left at the rate of what is
recorded (the samples and the video at its storage's measured rate), not a
fixed guess; while recording, the rate the writer measures."""

from __future__ import annotations

import pytest

from rig.gui.recording_panel import recording_rate_bytes_per_s
from rig.recording._video import BYTES_PER_PIXEL
from tests.rig.gui.conftest import LEFT


def test_minutes_left_come_from_the_storage_rate_then_the_measured_one(
    qtbot, window, tmp_path
):
    session = window.session
    qtbot.waitUntil(
        lambda: session.camera_intake.latest_frame is not None, timeout=10_000
    )
    height, width = session.camera_intake.latest_frame[0].shape
    expected = 2.0 * session.n_channels * session.sample_rate_hz + (
        BYTES_PER_PIXEL["ffv1"] * height * width * session.camera_intake.rate_hz
    )
    assert recording_rate_bytes_per_s(session) == pytest.approx(expected)
    window.recording.refresh()
    text = window.recording.disk.text()  # e.g. "75.8 GiB, 2 h"
    assert " GiB, " in text and text.endswith((" min", " h", "nearly full</span>"))
    window.recording.folder.setText(str(tmp_path / "runs"))
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: session.recorder.writer is not None, timeout=10_000)
    writer = session.recorder.writer
    qtbot.wait(3000)  # the guard measures over 2 s windows
    assert recording_rate_bytes_per_s(session) == writer.data_rate_bytes_per_s
    # The measured rate of lossless video is close to the storage's prior.
    assert 0.5 * expected < writer.data_rate_bytes_per_s < 2.0 * expected
    qtbot.mouseClick(window.recording.button, LEFT)
