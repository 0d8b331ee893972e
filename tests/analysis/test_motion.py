"""Segment tracking and displacement on rendered video with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.displacement import (
    region_displacement,
    stimulus_motion,
    train_motion,
    trains,
)
from analysis.tracking import SegmentTracker, band_minima, track_segments
from firmware_bridge.sim import CameraOptics, WormModel, WormParams, render_worm_frame

FS = 30_000
FPS = 60


def video(k1=-0.06, n_stim=3, seconds=3.0, seed=3):
    optics = CameraOptics(k1=k1)
    model = WormModel(WormParams(habituation_per_stimulus=0.0), seed=seed, fs_hz=FS)
    onsets = [3000 + k * FS for k in range(n_stim)]  # 1 pulse/s: twitches overlap
    for onset in onsets:
        model.stimulate(onset, 5.0, 3e-3)
    samples = np.arange(0, int(seconds * FS), FS // FPS)
    truth_mm = model.segment_boundaries_m(samples) * 1000
    frames = [render_worm_frame(truth_mm[i] / 1000, optics, frame_index=i)
              for i in range(samples.size)]  # fmt: skip
    return optics, model, onsets, samples, truth_mm, frames


def tracker_kwargs(optics):
    return dict(
        px_per_mm=optics.px_per_mm, origin_px=optics.origin_px[0],
        camera_matrix=optics.camera_matrix(), dist_coeffs=optics.dist_coeffs(),
    )  # fmt: skip


def test_tracking_error_is_below_0_05_mm_rms_with_lens_distortion_and_noise():
    optics, _, _, _, truth, frames = video()
    track = track_segments(frames, **tracker_kwargs(optics))
    first = track.positions_mm[0]
    index = np.array([np.argmin(np.abs(truth[0] - x)) for x in first])
    error = track.positions_mm - truth[:, index]
    assert track.positions_mm.shape[1] >= 130  # almost every boundary is a band
    assert np.isnan(track.positions_mm).mean() < 0.01
    assert np.sqrt(np.nanmean(error**2)) < 0.05
    assert abs(track.axis_row_px - optics.origin_px[1]) <= 2


def test_online_tracker_equals_batch_tracking():
    optics, _, _, _, _, frames = video(n_stim=1, seconds=0.5)
    batch = track_segments(frames, **tracker_kwargs(optics)).positions_mm
    tracker = SegmentTracker(**tracker_kwargs(optics))
    online = np.array([tracker.process(f) for f in frames])
    np.testing.assert_array_equal(online, batch)


def test_body_edges_are_not_bands():
    profile = np.r_[np.full(20, 50.0), np.full(20, 170.0), np.full(20, 50.0)]
    profile[30] = 100.0  # one real band in the middle of the body
    np.testing.assert_allclose(band_minima(profile), [30.0])


def test_region_displacement_and_strain_show_contraction():
    optics, _, _, samples, truth, frames = video(n_stim=1, seconds=1.0)
    track = track_segments(frames, **tracker_kwargs(optics))
    regions = [(40.0, 60.0), (120.0, 150.0)]  # rest positions on the raceway, mm
    disp, strain = region_displacement(track.positions_mm, regions)
    peak = int(np.nanargmin(disp[:, 1]))
    assert disp[peak, 1] < disp[peak, 0] < 0  # posterior moves more, toward the head
    assert strain[peak, 0] < -0.005  # the region shortens


def test_per_stimulus_motion_does_not_need_a_return_to_baseline():
    # Overlapping twitches at 1 Hz: each response measured against the trend.
    optics, model, onsets, samples, truth, _ = video(n_stim=3, seconds=3.0)
    t = samples / FS
    tail = truth[:, -1]
    responses = stimulus_motion(tail, t, np.array(onsets) / FS)
    p = model.params
    delay = p.utilisation_s + p.electromechanical_delay_s
    for r in responses:
        assert r.onset_latency_s == pytest.approx(delay + 0.03, abs=0.04)
        assert r.time_to_peak_s == pytest.approx(delay + p.twitch_peak_s, abs=0.06)
    # Antifacilitation: later twitches are smaller, though they ride on the first.
    peaks = [r.peak_displacement_mm for r in responses]
    assert peaks[0] > peaks[1] > peaks[2] > 0.5
    assert tail[int(onsets[1] / FS * FPS)] < tail[0] - 0.5  # not back at baseline


def twitch_tail(onsets, seconds=3.5):
    """The tail boundary's true position at 60 fps, for pulses at ``onsets``."""
    model = WormModel(WormParams(habituation_per_stimulus=0.0), seed=4, fs_hz=FS)
    for onset in onsets:
        model.stimulate(onset, 5.0, 3e-3)
    samples = np.arange(0, int(seconds * FS), FS // FPS)
    return samples / FS, model.segment_boundaries_m(samples)[:, -1] * 1000


def test_a_train_is_measured_as_one_twitch_and_its_pulses_not_alone():
    # Two 3-pulse trains at 10 Hz, 2 s apart (the issue: pulse 3 of a train got
    # 3–8 mm, its window cut by the next pulse or its trend a rising twitch).
    firsts = [3000, 3000 + 2 * FS]
    onsets = [f + k * FS // 10 for f in firsts for k in range(3)]
    t, tail = twitch_tail(onsets)
    per_pulse = stimulus_motion(tail, t, np.array(onsets) / FS)
    assert all(np.isnan(r.peak_displacement_mm) for r in per_pulse)
    assert "next pulse 0.1 s later" in per_pulse[0].note
    assert "0.1 s before is still contracting" in per_pulse[2].note
    trains_ = train_motion(tail, t, np.array(firsts) / FS, np.array(firsts) / FS + 0.2)
    _, single_tail = twitch_tail([3000])
    (single,) = stimulus_motion(single_tail, t, np.array([3000 / FS]))
    for train in trains_:
        # Three summed (antifacilitating) twitches: more than one, less than 3×.
        assert single.peak_displacement_mm < train.peak_displacement_mm
        assert train.peak_displacement_mm < 3 * single.peak_displacement_mm
        assert train.time_to_peak_s > single.time_to_peak_s
    assert trains([0, 1, 2, 0, 1, 2]) == [(0, 3), (3, 6)]
