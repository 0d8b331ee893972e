"""Online (chunked) analysis gives exactly the offline result."""

from __future__ import annotations

import numpy as np

from analysis.filters import bandpass_sos
from analysis.online import OnlineSpikeDetector, OnlineStimulusAnalyzer, detect_offline
from analysis.pipeline import Stimulus, analyse_stimuli
from firmware_bridge.sim import WormModel, WormParams

FS = 30_000


def recording(seed=5, n_stim=6):
    model = WormModel(WormParams(habituation_per_stimulus=0.0), seed=seed, fs_hz=FS)
    onsets = [7_000 + k * 9_000 for k in range(n_stim)]
    for k, onset in enumerate(onsets):
        model.stimulate(onset, 3.0 + 0.5 * k, 3e-3)
    return model, onsets, model.render(0, onsets[-1] + 8_000) * 1e6


def chunks(n, seed):
    rng = np.random.default_rng(seed)
    edges = np.sort(rng.choice(np.arange(1, n), size=40, replace=False))
    return list(zip(np.r_[0, edges], np.r_[edges, n], strict=True))


def test_chunked_spike_detection_equals_one_pass():
    _, _, x = recording()
    sos = bandpass_sos(FS)
    noise = np.full(4, 4.0)
    offline = detect_offline(x, sos, fs_hz=FS, noise=noise, sign=0)
    online = OnlineSpikeDetector(sos, 4, fs_hz=FS, noise=noise, sign=0)
    found = [online.process(x[a:b]) for a, b in chunks(x.shape[0], 1)]
    samples = np.concatenate([f.samples for f in found])
    channels = np.concatenate([f.channels for f in found])
    assert len(offline) > 10
    assert sorted(zip(samples, channels, strict=True)) == sorted(
        zip(offline.samples, offline.channels, strict=True)
    )


def test_online_stimulus_analysis_equals_offline_pipeline():
    model, onsets, x = recording()
    positions = model.geometry.pair_centres_m()
    online = OnlineStimulusAnalyzer(fs_hz=FS, n_channels=4, positions_m=positions)
    results = {}
    for a, b in chunks(x.shape[0], 2):  # stimuli announced as their onset passes
        for k, onset in enumerate(onsets):
            if a <= onset < b:
                online.add_stimulus(onset, 3e-3, key=k)
        results.update(dict(online.process(a, x[a:b])))
    stimuli = [Stimulus(o, 3.0 + 0.5 * k, 3e-3) for k, o in enumerate(onsets)]
    offline = analyse_stimuli(
        lambda first, n: x[first : first + n], stimuli, fs_hz=FS, positions_m=positions
    )
    assert sorted(results) == list(range(len(onsets)))
    for k, off in enumerate(offline):
        on = results[k]
        assert on.onset_sample == off.onset_sample == onsets[k]
        assert on.responded == off.responded
        np.testing.assert_array_equal(on.latency_s, off.latency_s)
        assert on.conduction_velocity_m_per_s == off.conduction_velocity_m_per_s or (
            np.isnan(on.conduction_velocity_m_per_s)
            and np.isnan(off.conduction_velocity_m_per_s)
        )
    assert sum(r.responded for r in offline) >= 3
