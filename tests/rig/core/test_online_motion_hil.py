"""Online twitch measures on the simulated rig over its pseudo-terminal: each
stimulus's peak displacement, measured from the live tracking while acquiring,
against the simulated worm's true segment positions at the same instants."""

from __future__ import annotations

import time

import numpy as np
import pytest

from analysis.displacement import stimulus_motion
from firmware_bridge import StimPulse
from firmware_bridge.sim import SimulatedRig
from rig.core.connect import open_rig
from tests._rigs import session_on


def test_peak_displacement_per_stimulus_matches_the_worms_true_twitch():
    simulator = SimulatedRig(seed=21)  # the test reads its worm's true motion
    session = session_on(simulator, camera=simulator.camera())
    motion, electrical = [], []
    session.events.motion_measured.connect(lambda trial, r: motion.append(r))
    session.events.response_measured.connect(lambda trial, r: electrical.append(r))
    try:
        session.start()
        time.sleep(0.6)  # a baseline before the first stimulus
        session.arm()
        for amplitude in (2.2, 5.5, 4.0):  # below threshold, MGF + LGF, MGF only
            session.stimulate(StimPulse(amplitude, 3e-3))
            time.sleep(1.0)
        times_s, _, whole_mm = session.tracking.motion_series()
        model = simulator.model
    finally:
        session.close()
    assert [r["trial"] for r in motion] == [0, 1, 2]
    assert [r["stimulus_sample"] for r in motion] == [
        r["stimulus_sample"] for r in electrical
    ]
    # Truth: the worm's segment boundaries at the instants the frames were stamped.
    samples = np.round(times_s * session.sample_rate_hz).astype(int)
    rest_mm = model.segment_boundaries_m(np.array([0]))[0] * 1000
    true_whole = (model.segment_boundaries_m(samples) * 1000 - rest_mm).mean(axis=1)
    onsets_s = np.array([r["stimulus_sample"] for r in motion]) / 30_000
    truth = stimulus_motion(true_whole, times_s, onsets_s, window_s=0.4)
    measured = [r["peak_displacement_mm"] for r in motion]
    # Positions are along the body from the head tip, which is found afresh in
    # every frame (±0.0065 mm): over a 0.4 s window with no twitch, the largest
    # deviation from the trend of the whole body's mean reaches ~0.03 mm.
    assert measured == pytest.approx([m.peak_displacement_mm for m in truth], abs=0.04)
    assert measured[0] < 0.05 < 0.5 < measured[2] < measured[1]
    # Twitch peaks come a few hundred ms after the stimulus, not at the window's edge.
    assert 0.2 < motion[1]["time_to_peak_s"] < 0.39
    assert len(motion[1]["region_peak_displacement_mm"]) == 4


def test_no_camera_means_no_motion_measures():
    session = open_rig("sim://?seed=21")
    try:
        session.start()
        assert session.tracking is None and session.motion is None
    finally:
        session.close()
