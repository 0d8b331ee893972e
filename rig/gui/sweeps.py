"""Stimulus-locked view: last N sweeps per channel with the detected AP marked,
and latency against electrode position with the live conduction velocity.

Sweeps are scaled by ``session.uv_per_count()`` (the gain calibration's, else
the board's nominal gain), as the live traces and the online analysis are.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._widgets import wrapping_label


class SweepsWidget(QtWidgets.QWidget):
    """Overlays of stimulus-locked epochs; results come from the session's analysis."""

    def __init__(
        self, session, bridge, *, n_sweeps=10, window_ms=(-2.0, 12.0), parent=None
    ):
        super().__init__(parent)
        self.session = session
        self.n_sweeps = n_sweeps
        self.window_ms = window_ms
        self.results: dict[int, dict] = {}  # stimulus sample -> analysis result
        layout = QtWidgets.QHBoxLayout(self)
        self.graphics = pg.GraphicsLayoutWidget()
        layout.addWidget(self.graphics, 3)
        self.latency_plot = pg.PlotWidget(title="latency vs position")
        self.latency_plot.setLabel("bottom", "position", units="m")
        self.latency_plot.setLabel("left", "latency", units="s")
        self.latency_points = pg.ScatterPlotItem(size=8, brush="c")
        self.fit_line = pg.PlotDataItem(pen=pg.mkPen("y"))
        self.latency_plot.addItem(self.latency_points)
        self.latency_plot.addItem(self.fit_line)
        self.velocity_label = wrapping_label("conduction velocity: –")
        right = QtWidgets.QVBoxLayout()
        right.addWidget(self.latency_plot)
        right.addWidget(self.velocity_label)
        layout.addLayout(right, 2)
        self.plots: list[pg.PlotItem] = []
        self.curves: list[list[pg.PlotDataItem]] = []
        self.ap_marks: list[pg.ScatterPlotItem] = []
        bridge.response_measured.connect(self._on_result)

    def _ensure_plots(self, n_channels: int) -> None:
        while len(self.plots) < n_channels:
            ch = len(self.plots)
            plot = self.graphics.addPlot(row=ch, col=0)
            plot.setLabel("left", f"ch {ch}", units="V")
            if ch == n_channels - 1:
                plot.setLabel("bottom", "time from stimulus", units="s")
            curves = [
                plot.plot(pen=pg.mkPen((200, 200, 255, 60)))
                for _ in range(self.n_sweeps)
            ]
            marks = pg.ScatterPlotItem(size=9, brush="r", symbol="x")
            plot.addItem(marks)
            self.plots.append(plot)
            self.curves.append(curves)
            self.ap_marks.append(marks)

    def _on_result(self, trial: int, result: dict) -> None:
        self.results[int(result.get("stimulus_sample", trial))] = result
        if len(self.results) > 4 * self.n_sweeps:  # a day at 1 Hz: keep it small
            del self.results[next(iter(self.results))]
        latencies = result.get("latency_s")
        positions = result.get("positions_m")
        if latencies is None or positions is None:
            return
        lat = np.asarray(latencies, dtype=float)
        pos = np.asarray(positions, dtype=float)
        ok = np.isfinite(lat)
        self.latency_points.setData(pos[ok], lat[ok])
        velocity = result.get("conduction_velocity_m_per_s")
        if velocity and np.isfinite(velocity) and ok.sum() >= 2:
            slope, intercept = np.polyfit(pos[ok], lat[ok], 1)
            xs = np.array([pos.min(), pos.max()])
            self.fit_line.setData(xs, slope * xs + intercept)
            self.velocity_label.setText(f"conduction velocity: {velocity:.1f} m/s")

    def refresh(self) -> None:
        """Pull the last sweeps from the ring and redraw (called at ~10 Hz)."""
        acquisition = self.session.acquisition
        if acquisition is None or not self.session.stimuli:
            return
        fs = self.session.sample_rate_hz
        pre = int(-self.window_ms[0] * fs / 1000)
        post = int(self.window_ms[1] * fs / 1000)
        # As the traces and the online analysis (whose AP marks these are):
        # the gain calibration's µV per count per channel, else the nominal.
        volts = np.asarray(self.session.uv_per_count(), dtype=np.float64) * 1e-6
        t = np.arange(-pre, post) / fs
        stimuli = [s["sample"] for s in self.session.stimuli[-self.n_sweeps :]]
        self._ensure_plots(acquisition.ring.n_channels)
        for k, onset in enumerate(stimuli):
            try:
                epoch = acquisition.ring.read(onset - pre, pre + post)
            except LookupError:
                continue  # not yet complete, or already overwritten
            epoch = epoch * volts
            epoch -= epoch[:pre].mean(axis=0) if pre else 0
            for ch in range(epoch.shape[1]):
                self.curves[ch][k].setData(t, epoch[:, ch], skipFiniteCheck=True)
        latest = self.results.get(stimuli[-1]) if stimuli else None
        if latest and latest.get("latency_s") is not None:
            # Per channel; None where that channel did not respond.
            latencies = _floats(latest["latency_s"])
            amplitudes = _floats(latest.get("amplitude_uv") or [None] * len(latencies))
            for ch, marks in enumerate(self.ap_marks[: len(latencies)]):
                if np.isfinite(latencies[ch]):
                    amp_v = amplitudes[ch] * 1e-6 if np.isfinite(amplitudes[ch]) else 0
                    marks.setData([latencies[ch]], [amp_v])
                else:
                    marks.setData([], [])


def _floats(values) -> np.ndarray:
    """A list with None for 'no value' as floats with NaN."""
    return np.array([np.nan if v is None else float(v) for v in values])
