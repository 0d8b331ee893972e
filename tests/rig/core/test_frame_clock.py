import numpy as np

from rig.core.frame_clock import FrameClock

FS = 30_000.0


def make_triggers(n, period_samples=500, t0=10.0):
    return [(1000 + k * period_samples, k, t0 + k * period_samples / FS + 0.002)
            for k in range(n)]  # fmt: skip


def test_every_frame_matched_to_its_trigger():
    clock = FrameClock(FS)
    rng = np.random.default_rng(0)
    for sample, count, t in make_triggers(50):
        clock.add_trigger(sample, count, t)
        clock.add_frame(t + 0.008 + rng.uniform(-0.001, 0.001))
    stamps, report = clock.match()
    assert [s.sample for s in stamps] == [1000 + 500 * k for k in range(50)]
    assert report.dropped_triggers == () and report.extra_frames == ()
    assert abs(report.latency_s - 0.008) < 0.001


def test_dropped_frames_are_detected_and_later_frames_stay_aligned():
    clock = FrameClock(FS)
    for sample, count, t in make_triggers(40):
        clock.add_trigger(sample, count, t)
        if count not in (5, 6, 21):
            clock.add_frame(t + 0.005)
    stamps, report = clock.match()
    assert report.dropped_triggers == (5, 6, 21)
    assert report.n_matched == 37
    assert [s.trigger_count for s in stamps][:6] == [0, 1, 2, 3, 4, 7]
    assert stamps[-1].sample == 1000 + 500 * 39


def test_extra_frame_without_trigger_is_reported():
    clock = FrameClock(FS)
    for sample, count, t in make_triggers(10):
        clock.add_trigger(sample, count, t)
        clock.add_frame(t + 0.005)
        if count == 4:
            clock.add_frame(t + 0.005 + 250 / FS)  # half-way to the next trigger
    stamps, report = clock.match()
    assert report.extra_frames == (5,)
    assert stamps[5].sample is None and stamps[6].sample == 1000 + 500 * 5


def test_without_triggers_frames_use_host_clock_regression():
    clock = FrameClock(FS)
    rng = np.random.default_rng(3)
    # Sample s is taken at host time 100 + s / FS; 10 ms blocks arrive 1-4 ms late.
    for k in range(200):
        end = 300 * (k + 1)
        clock.add_progress(100.0 + end / FS + rng.uniform(0.001, 0.004), end)
    clock.add_frame(100.5)
    stamps, _ = clock.match()
    assert stamps[0].source == "host-clock"
    assert abs(stamps[0].sample - 0.5 * FS) < 0.005 * FS


def test_forgetting_old_history_keeps_indices_and_later_stamps_unchanged():
    clock = FrameClock(FS)
    triggers = make_triggers(300)  # 5 s at 60 Hz
    for sample, count, t in triggers:
        clock.add_trigger(sample, count, t)
        if count not in (100, 101, 250):  # the camera dropped three frames
            # frames arrive 30 ms after their trigger: about two periods late
            clock.add_frame(t + 0.030)
    before, _ = clock.match()
    cut_s = triggers[150][2]
    clock.forget_before(cut_s)
    n_frames, n_triggers = clock.held()
    assert n_frames < 160 and n_triggers < 160  # the first half is gone
    after, report = clock.match()
    kept = {s.frame_index: s for s in before}
    # Every frame still held has the stamp it had before; indices are absolute.
    assert after and all(kept[s.frame_index] == s for s in after)
    assert after[-1].frame_index == 296 and after[-1].trigger_count == 299
    assert report.dropped_triggers == (250,)
    assert clock.add_frame(triggers[-1][2] + 0.05) == 297  # numbering goes on


def test_forgetting_without_triggers_drops_frames_by_host_time():
    clock = FrameClock(FS)
    for k in range(120):
        clock.add_progress(10.0 + k * 0.01, 300 * (k + 1))
        clock.add_frame(10.0 + k * 0.01)
    clock.forget_before(10.6)
    stamps, _ = clock.match()
    assert stamps[0].frame_index == 60 and len(stamps) == 60
    assert stamps[0].source == "host-clock"
