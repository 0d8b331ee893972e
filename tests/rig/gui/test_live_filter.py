"""The live traces' band-pass: refreshed chunk by chunk, it is one causal pass.

Samples reach the ring in chunks of uneven size, as the serial reader writes
them, and the traces widget (real, offscreen) refreshes after each. What it
draws must be what one pass of the analysis's band-pass over the whole stream
gives (scipy's ``sosfilt`` here, an independent implementation): no seam at a
chunk boundary and no start-up transient at the window's left edge.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import signal

from analysis.filters import bandpass_sos
from rig.core.ring import SampleRing
from rig.gui.traces import LiveTracesWidget

FS = 30_000
UV_PER_COUNT = np.array([0.195, 0.2, 0.21, 0.19], dtype=np.float32)


def stream(seed: int = 3, seconds: float = 1.2) -> np.ndarray:
    """Counts: amplifier offsets, mains hum, noise and spikes."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n)[:, None] / FS
    x = np.array([800.0, -400.0, 150.0, 0.0]) + 300 * np.sin(2 * np.pi * 50 * t)
    x = x + rng.normal(0, 20, (n, 4))
    x[rng.integers(0, n, 60), rng.integers(0, 4, 60)] -= 400  # spikes
    return np.round(x).astype(np.int16)


def one_pass(counts: np.ndarray) -> np.ndarray:
    """The band-pass over the whole stream, started in the steady state."""
    uv = (counts.astype(np.float32) * UV_PER_COUNT).astype(np.float64)
    sos = bandpass_sos(FS)
    zi = signal.sosfilt_zi(sos)[:, :, None] * uv[0][None, None, :]
    return signal.sosfilt(sos, uv, axis=0, zi=zi)[0].astype(np.float32)


@pytest.fixture
def traces(qtbot):
    ring = SampleRing(FS * 10, 4)
    session = SimpleNamespace(
        acquisition=SimpleNamespace(ring=ring),
        sample_rate_hz=FS,
        uv_per_count=lambda: UV_PER_COUNT,
        stimuli=[],
    )
    widget = LiveTracesWidget(session)
    qtbot.addWidget(widget)
    # Wider than the window has samples: every sample is drawn (no min/max
    # bins), so the window's left edge, where a start-up transient would be,
    # is on screen too.
    widget.resize(1800, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.window_s.setValue(0.05)
    widget.filter.setChecked(True)
    return widget, ring


def test_chunked_live_filtering_equals_one_pass(traces):
    widget, ring = traces
    counts = stream()
    rng = np.random.default_rng(8)
    edges = np.cumsum(rng.integers(20, 600, 2000))
    edges = np.r_[0, edges[edges < counts.shape[0]], counts.shape[0]]
    for a, b in itertools.pairwise(edges):
        ring.write(int(a), counts[a:b])
        widget.refresh()
    assert edges.size > 100  # many refreshes, many seams
    n = int(0.05 * FS)
    expected = one_pass(counts)[-n:]
    np.testing.assert_allclose(widget.window_uv, expected, rtol=0, atol=1e-3)
    # What is drawn: that window, less its baseline, every sample.
    shown = expected - np.median(expected[::50], axis=0)
    spacing = widget.spacing_uv.value()
    assert widget.plot.width() > n / 2  # (so minmax_decimate passes it whole)
    for ch, curve in enumerate(widget.curves):
        assert curve.yData.size == n
        np.testing.assert_allclose(
            curve.yData, shown[:, ch] - ch * spacing, rtol=0, atol=1e-3
        )


def test_the_filter_starts_again_when_the_window_changes(traces):
    widget, ring = traces
    counts = stream(seed=4, seconds=0.6)
    ring.write(0, counts[:9000])
    widget.refresh()
    widget.window_s.setValue(0.1)  # a new window: the filter starts on it
    ring.write(9000, counts[9000:])
    widget.refresh()
    n = int(0.1 * FS)
    start = counts.shape[0] - n
    np.testing.assert_allclose(
        widget.window_uv, one_pass(counts[start:]), rtol=0, atol=1e-3
    )
