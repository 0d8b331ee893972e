"""Live traces and displacement at the bench (issue 21, item 2): every trace
labelled with its pair and position, a mains notch (50 or 60 Hz, with its
harmonics) that the lab's setting remembers, and a displacement axis that does
not blow tracking noise up into motion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pyqtgraph.Qt import QtCore
from scipy import signal

from rig.core.ring import SampleRing
from rig.gui.camera_view import CameraWidget
from rig.gui.traces import LiveTracesWidget

FS = 30_000


def hum_stream(seconds: float, mains_hz: float) -> np.ndarray:
    """Counts: mains hum with its 2nd and 3rd harmonics over small noise."""
    n = int(seconds * FS)
    t = np.arange(n)[:, None] / FS
    hum = sum(
        a * np.sin(2 * np.pi * k * mains_hz * t)
        for k, a in ((1, 300), (2, 120), (3, 80))
    )
    noise = np.random.default_rng(1).normal(0, 5, (n, 4))
    return np.round(hum + noise).astype(np.int16)


def power_at(x: np.ndarray, freq_hz: float) -> float:
    """Power of ``x`` (one channel) at ``freq_hz``, from an independent Welch."""
    f, p = signal.welch(x, fs=FS, nperseg=FS // 2)
    return float(p[np.argmin(np.abs(f - freq_hz))])


@pytest.fixture
def traces(qtbot, tmp_path):
    ring = SampleRing(FS * 10, 4)
    session = SimpleNamespace(
        acquisition=SimpleNamespace(ring=ring),
        sample_rate_hz=FS,
        uv_per_count=lambda: np.full(4, 0.2, dtype=np.float32),
        stimuli=[],
        positions_m=np.array([0.035, 0.055, 0.075, 0.095]),
    )
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.IniFormat)
    widget = LiveTracesWidget(session, settings=settings)
    qtbot.addWidget(widget)
    widget.resize(1800, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, ring, settings


def test_each_trace_is_labelled_with_its_pair_and_position(traces):
    widget, ring, _ = traces
    ring.write(0, hum_stream(0.5, 50.0))
    widget.refresh()
    spacing = widget.spacing_uv.value()
    ticks = widget.channel_ticks(spacing, 4)
    assert ticks == [
        (0.0, "0 · 35 mm"),
        (-spacing, "1 · 55 mm"),
        (-2 * spacing, "2 · 75 mm"),
        (-3 * spacing, "3 · 95 mm"),
    ]
    assert widget.plot.getAxis("left")._tickLevels == [ticks]


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_the_notch_takes_out_hum_and_its_harmonics(traces, mains_hz):
    widget, ring, settings = traces
    widget.window_s.setValue(2.0)
    widget.notch.setCurrentText(f"{mains_hz:.0f} Hz notch")
    assert settings.value("notch") == f"{mains_hz:.0f} Hz notch"  # remembered
    counts = hum_stream(4.0, mains_hz)
    step = 3000
    for start in range(0, counts.shape[0], step):
        ring.write(start, counts[start : start + step])
        widget.refresh()
    shown = widget.window_uv[:, 0]  # the newest 2 s, after the filter settled
    raw = counts[-shown.shape[0] :, 0] * 0.2
    for k in (1, 2, 3):
        before, after = power_at(raw, k * mains_hz), power_at(shown, k * mains_hz)
        assert 10 * np.log10(before / after) > 20, k  # > 20 dB less hum
    # and the band the spikes live in is untouched
    assert np.std(shown) < 0.2 * np.std(raw)


def test_the_notch_setting_is_the_labs(qtbot, tmp_path):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.IniFormat)
    settings.setValue("notch", "60 Hz notch")
    session = SimpleNamespace(sample_rate_hz=FS, acquisition=None, stimuli=[])
    widget = LiveTracesWidget(session, settings=settings)
    qtbot.addWidget(widget)
    assert widget.notch.currentText() == "60 Hz notch"
    assert widget.filter_sos() is not None and widget.filter_sos().shape[0] == 3


def test_tracking_noise_is_a_band_not_a_twitch(qtbot):
    session = SimpleNamespace(camera=None, acquisition=None, sample_rate_hz=FS)
    widget = CameraWidget(session)
    qtbot.addWidget(widget)
    rng = np.random.default_rng(2)
    jitter_m = rng.normal(0, 4e-6, (600, 4))  # ±4 µm of tracking noise
    widget._fit_y(jitter_m)
    widget._show_noise(jitter_m)
    low, high = widget.trace.getViewBox().viewRange()[1]
    assert high >= 1e-4 and low <= -1e-4  # at least ±0.1 mm: noise looks small
    assert widget.noise_m == pytest.approx(4e-6, rel=0.2)
    assert widget.noise_band.getRegion() == pytest.approx((-12e-6, 12e-6), rel=0.2)
    twitch = jitter_m.copy()
    twitch[300:] += 1.5e-3  # a 1.5 mm twitch: the axis follows it
    widget._fit_y(twitch)
    assert widget.trace.getViewBox().viewRange()[1][1] >= 1.5e-3
