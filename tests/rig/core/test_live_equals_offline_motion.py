"""Live motion equals offline motion on the same frames.

Rendered video of the simulated worm (lens distortion, sensor noise) goes frame
by frame through the session's live tracking and online motion measures, and in
one batch through the offline analysis's functions (``track_midline``,
``displacement``, ``stimulus_motion``). The worm bends and crawls. The displacement series and each
stimulus's measures must be the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.displacement import (
    ONLINE_TWITCH_WINDOW_S,
    displacement,
    electrode_regions_mm,
    stimulus_motion,
)
from analysis.midline import track_midline
from firmware_bridge.protocol import StimDelivered
from firmware_bridge.protocol.stream import Decoded
from firmware_bridge.sim import CameraOptics, WormModel, WormParams, render_worm_frame
from firmware_bridge.sim.posture import Posture
from rig.core.live_tracking import LiveTracking
from rig.core.online_motion import OnlineMotion

FS = 30_000
FPS = 60
# Two stimuli closer than the online window: the first's window must end at
# the second, as offline.
ONSETS = [9_000, 18_000]


@pytest.fixture(scope="module")
def filmed():
    optics = CameraOptics(k1=-0.06)
    params = WormParams(
        habituation_per_stimulus=0.0, bend_amplitude_rad=0.4, crawl_speed_m_per_s=0.002
    )
    model = WormModel(params, seed=3, fs_hz=FS)
    posture = Posture(model)
    for onset, amplitude in zip(ONSETS, (5.5, 4.0), strict=True):
        model.stimulate(onset, amplitude, 3e-3)
    samples = np.arange(0, int(1.2 * FS), FS // FPS)
    truth_m = model.segment_boundaries_m(samples)
    frames = [render_worm_frame(truth_m[i], optics, frame_index=i, posture=posture,
                                time_s=samples[i] / FS)
              for i in range(samples.size)]  # fmt: skip
    centres_mm = model.geometry.pair_centres_m() * 1000  # along the body
    return optics, samples, frames, centres_mm


def test_live_tracking_and_motion_equal_the_offline_analysis(filmed):
    optics, samples, frames, centres_mm = filmed
    lens = dict(camera_matrix=optics.camera_matrix(), dist_coeffs=optics.dist_coeffs())
    tracking = LiveTracking(
        px_per_mm=optics.px_per_mm,
        origin_px=optics.origin_px,
        region_centres_mm=centres_mm,
        sample_rate_hz=FS,
        lens=lens,
    )
    results = []
    motion = OnlineMotion(tracking, fs_hz=FS, emit=lambda trial, r: results.append(r))
    try:
        for frame, sample in zip(frames, samples, strict=True):
            for onset in ONSETS:  # announced as the stimulus happens
                if sample - FS // FPS < onset <= sample:
                    motion.consume(_delivered(onset), 0.0)
            tracking.on_frame(frame, int(sample))
        times, live_regions, live_body = tracking.motion_series()
    finally:
        tracking.close()

    # Offline: the same frames, tracked in one batch, the batch rule.
    track = track_midline(
        frames, px_per_mm=optics.px_per_mm, origin_px=optics.origin_px, **lens
    )
    offline = displacement(track.positions_mm, electrode_regions_mm(centres_mm))
    np.testing.assert_array_equal(times, samples / FS)
    np.testing.assert_array_equal(live_regions, offline.region_mm)
    np.testing.assert_array_equal(live_body, offline.body_mm)
    _, _, _, live_strain = tracking.series()
    np.testing.assert_array_equal(live_strain, offline.strain)

    onsets_s = np.array(ONSETS) / FS
    body = stimulus_motion(
        offline.body_mm, times, onsets_s, window_s=ONLINE_TWITCH_WINDOW_S
    )
    regions = [
        stimulus_motion(column, times, onsets_s, window_s=ONLINE_TWITCH_WINDOW_S)
        for column in offline.region_mm.T
    ]
    assert [r["trial"] for r in results] == [0, 1]
    for k, result in enumerate(results):
        assert result["peak_displacement_mm"] == _num(body[k].peak_displacement_mm)
        assert result["time_to_peak_s"] == _num(body[k].time_to_peak_s)
        assert result["contraction_onset_latency_s"] == _num(body[k].onset_latency_s)
        assert result["region_peak_displacement_mm"] == [
            _num(r[k].peak_displacement_mm) for r in regions
        ]
        strain = [
            stimulus_motion(column, times, onsets_s, window_s=ONLINE_TWITCH_WINDOW_S)
            for column in offline.strain.T
        ]
        assert result["region_peak_strain"] == [
            _num(s[k].peak_displacement_mm) for s in strain
        ]
        assert result["regions_mm_from_head"] == [
            [c - 10.0, c + 10.0] for c in centres_mm
        ]
    # The second twitch starts while the first is still rising (0.3 s apart):
    # neither live nor offline measures it on its own (issue 17, item 5).
    assert results[1]["peak_displacement_mm"] is None
    # A real twitch, cut at the second stimulus (0.3 s, not the 0.4 s window).
    assert body[0].peak_displacement_mm > 0.5
    assert body[0].time_to_peak_s < 0.3


def _num(value: float) -> float | None:
    """As the online results hold a value: None where there is none."""
    return None if np.isnan(value) else value


def _delivered(onset: int) -> Decoded:
    message = StimDelivered(
        sample_index=onset,
        cmd_seq=0,
        pulse_index=0,
        commanded_mvpp=5000,
        delivered_mvpp=5000,
        duration_us=3000,
        cathode=0,
        anode=1,
        polarity=0,
    )
    return Decoded(samples=np.zeros((0, 4), np.int16), messages=[message])
