"""The stimulus-locked view over the simulated rig (issue 21, item 3): sweeps as
the analysis cleaned them (the stimulus artifact gone), each fibre's arrival
marked on its waveform, one colour per condition with a legend, units on
every axis."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge import StimPulse
from rig.core.connect import open_rig
from rig.gui._bridge import QtBridge
from rig.gui.sweeps import SweepsWidget


@pytest.fixture
def session():
    session = open_rig("sim://?seed=7")
    yield session
    session.close()


def _streamed_s(session) -> float:
    """Seconds of samples streamed so far. Not the newest sample number: the
    board counts from its own start, before the stream (a first sample of
    ~10 000 already passed a check of 0.2 s, and a stimulus then had 12 ms of
    signal before it instead of the 50 ms the view's epochs take)."""
    ring = session.acquisition.ring
    if ring.end is None:
        return 0.0
    return (ring.end - ring.oldest) / session.sample_rate_hz


def test_sweeps_are_cleaned_with_arrivals_on_the_waveform(qtbot, session):
    bridge = QtBridge(session.events)
    view = SweepsWidget(session, bridge)
    qtbot.addWidget(view)
    view.show()
    session.start()
    fs = session.sample_rate_hz
    qtbot.waitUntil(lambda: _streamed_s(session) > 0.2, timeout=5000)
    session.arm()
    conditions = [(5.5, 3e-3), (4.0, 2e-3), (5.5, 3e-3)]
    for amplitude, duration in conditions:
        session.stimulate(StimPulse(amplitude, duration))
        qtbot.wait(400)
    qtbot.waitUntil(lambda: len(view.results) == 3, timeout=10_000)
    view.refresh()

    # One colour per condition, named in the legend.
    names = [label.text for _, label in view.legend.items]
    assert names == ["5.5 Vpp × 3 ms", "4 Vpp × 2 ms"]
    # Units on every axis.
    for plot in view.plots:
        assert plot.getAxis("bottom").labelText == "time from stimulus (ms)"
        assert plot.getAxis("left").labelText == "µV"
        assert " mm" in plot.titleLabel.text
    assert view.latency_plot.getAxis("left").labelText == "latency (ms)"

    # The stimulus artifact (about a millivolt raw on the nearest pair) is gone.
    onset = session.stimuli[-1]["sample"]
    rows_before, cleaned = session.online.sweeps[onset]
    raw = session.acquisition.ring.read(onset, int(3e-3 * fs))
    raw_uv = raw * np.asarray(session.uv_per_count())
    during = cleaned[rows_before : rows_before + int(3e-3 * fs), 0]
    assert np.nanmax(np.abs(during)) < 0.25 * np.ptp(raw_uv[:, 0])

    # Each arrival's mark sits on its pair's newest sweep at its latency.
    result = view.results[onset]
    assert result["responded"]
    newest = len(session.stimuli[-view.n_sweeps :]) - 1
    marked = 0
    for ch, marks in enumerate(view.ap_marks):
        curve = view.curves[ch][newest]
        for spot in marks.points():
            x, y = spot.pos().x(), spot.pos().y()
            k = int(np.argmin(np.abs(curve.xData - x)))
            assert abs(curve.xData[k] - x) < 1.5e3 / fs  # on a sample
            assert y == pytest.approx(curve.yData[k], abs=1e-3)
            marked += 1
    first = [lat for lat in result["latency_s"] if lat is not None]
    assert marked >= len(first) >= 3  # every pair that saw the first volley


def test_a_mid_body_stimulus_draws_a_v_from_its_site(qtbot):
    session = open_rig("sim://?seed=7&channels=8")
    try:
        bridge = QtBridge(session.events)
        view = SweepsWidget(session, bridge)
        qtbot.addWidget(view)
        session.start()
        fs = session.sample_rate_hz
        qtbot.waitUntil(lambda: _streamed_s(session) > 0.2, timeout=5000)
        session.arm()
        session.stimulate(StimPulse(4.2, 1e-3, cathode=4, anode=None))  # 67 mm: LGF
        qtbot.waitUntil(lambda: len(view.results) == 1, timeout=10_000)
        onset = session.stimuli[-1]["sample"]
        result = view.results[onset]
        # the epoch kept for the view: 50 ms before the onset, as analysed
        rows_before, cleaned = session.online.sweeps[onset]
        assert rows_before == round(0.05 * fs)
        assert cleaned.shape[0] == rows_before + session.online.analyzer.post_rows(
            0.067
        )
    finally:
        session.close()
    assert result["site_m"] == pytest.approx(0.067)
    assert result["volleys"] and result["conduction_velocity_m_per_s"] > 0
    xs, ys = view.fit_line.getData()
    # Latency against position is a V whose apex is the site (67 mm), not a
    # line from the head.
    assert list(xs) == pytest.approx([30.0, 67.0, 140.0])
    assert ys[1] < ys[0] and ys[1] < ys[2]
    assert "from 67 mm" in view.velocity_label.text()
