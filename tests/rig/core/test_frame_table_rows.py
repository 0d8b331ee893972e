"""The crash-safe frame table (Recorder.record_frame_table): rows appended as
frames settle are never out of order, even when a later re-match of the
whole recording places a frame at or before one already written (a killed
recording once kept two such rows: the table a reader trusts after a crash)."""

from __future__ import annotations

from rig.core.frame_clock import FrameStamp
from rig.core.recorder import Recorder


class _Writer:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def append_frame_samples(self, rows: list[tuple]) -> None:
        self.rows.extend(rows)


class _Clock:
    """Frames 0.. arrive 1/60 s apart; ``samples`` is what the next match says."""

    def __init__(self, samples: list[int | None]) -> None:
        self.samples = samples

    def match(self):
        stamps = [
            FrameStamp(i, smp, "trigger", None if smp is None else smp // 500)
            for i, smp in enumerate(self.samples)
        ]
        return stamps, None

    def frame_time(self, index: int) -> float:
        return index / 60.0


def test_a_rematch_never_writes_a_row_out_of_order():
    recorder = Recorder(on_failure=lambda *args: None)
    writer = _Writer()
    recorder.start(writer, first_sample=0)
    recorder._frame_indices = list(range(6))
    clock = _Clock([500, 1000, 1500, None, None, None])
    recorder.record_frame_table(clock, 0, now_s=1.0 + 2 / 60)  # frames 0-2 settled
    # The next match moves frame 3 back onto frame 2's trigger: left to the close
    clock.samples = [500, 1000, 1500, 1500, 2500, 3000]
    recorder.record_frame_table(clock, 0, now_s=10.0)
    samples = [row[1] for row in writer.rows]
    assert [row[0] for row in writer.rows] == [0, 1, 2, 4, 5]  # frame 3 skipped
    assert samples == sorted(set(samples))  # strictly increasing
