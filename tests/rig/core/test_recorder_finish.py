"""The recorder keeps the session from pruning the frame clock until the
frame table is written: pruned history (found by benchmarks/bench_sync.py
under load, while the encoder's queue drained) left the LED code nothing to
align."""

from __future__ import annotations

import numpy as np

from rig.core.frame_clock import FrameClock
from rig.core.recorder import Recorder
from rig.recording import RecordingWriter


def test_busy_until_the_frame_table_is_written(tmp_path, monkeypatch):
    recorder = Recorder(on_failure=lambda exc: None)
    writer = RecordingWriter.create(
        tmp_path / "run", n_channels=1, sample_rate_hz=30_000.0, metadata={}
    )
    recorder.start(writer, 0)
    clock = FrameClock(30_000.0)
    for k in range(3):
        clock.add_trigger(500 * k, k + 1, k / 60)
        index = clock.add_frame(k / 60 + 0.01)
        recorder.record_frame(index, np.zeros((48, 64), np.uint8), k / 60 + 0.01)
    seen = []
    real = Recorder.write_frame_table

    def spy(self, *args, **kwargs):
        seen.append(self.busy)  # what the relay thread sees meanwhile
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "write_frame_table", spy)
    assert recorder.busy
    recorder.finish(clock, offset_samples=0, status="completed")
    assert seen == [True]
    assert not recorder.busy
    recorder.close()
