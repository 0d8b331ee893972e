"""Stimulus-locked view: the last sweeps per pair as the analysis saw them, each
fibre's arrival marked on its waveform, and latency against position with the
live conduction velocity.

The sweeps are the online analysis's own cleaned epochs (hum and stimulus
artifact removed, band-passed: ``analysis.propagation.analyse_stimulus`` with
``keep_cleaned``), so what is drawn is what was analysed; an arrival's mark
sits on the waveform at its latency. Sweeps are coloured by condition
(amplitude × duration), with a legend. Without an online analysis (no
electrode positions) the raw epochs are shown, baseline-subtracted, and the
view says so. Times in ms from the stimulus, voltages in µV, positions in mm.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._widgets import wrapping_label

# A symbol and colour per fibre, the same on every pair.
FIBRE_STYLE = {"mgf": ("x", "r"), "lgf": ("o", "c"), "volley": ("t", "y")}


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
        left = QtWidgets.QVBoxLayout()
        self.graphics = pg.GraphicsLayoutWidget()
        left.addWidget(self.graphics, 1)
        self.source_label = wrapping_label("")
        left.addWidget(self.source_label)
        layout.addLayout(left, 3)
        self.latency_plot = pg.PlotWidget(title="latency vs position")
        self.latency_plot.setLabel("bottom", "pair centre from the head (mm)")
        self.latency_plot.setLabel("left", "latency (ms)")
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
        self.legend: pg.LegendItem | None = None
        self.conditions: list[tuple[float, float]] = []  # colour index = position
        bridge.response_measured.connect(self._on_result)

    def _ensure_plots(self, n_channels: int) -> None:
        positions_m = getattr(self.session, "positions_m", None)
        while len(self.plots) < n_channels:
            ch = len(self.plots)
            plot = self.graphics.addPlot(row=ch, col=0)
            where = ""
            if positions_m is not None and ch < len(positions_m):
                where = f" · {positions_m[ch] * 1000:.0f} mm"
            plot.setTitle(f"pair {ch}{where}", size="9pt")
            plot.setLabel("left", "µV")
            plot.setLabel("bottom", "time from stimulus (ms)")
            plot.setXRange(*self.window_ms, padding=0)
            if ch:
                plot.setXLink(self.plots[0])
            curves = [plot.plot() for _ in range(self.n_sweeps)]
            marks = pg.ScatterPlotItem(size=11)
            plot.addItem(marks)
            self.plots.append(plot)
            self.curves.append(curves)
            self.ap_marks.append(marks)
        if self.legend is None and self.plots:
            self.legend = self.plots[0].addLegend(offset=(-10, 5))

    def _on_result(self, trial: int, result: dict) -> None:
        self.results[int(result.get("stimulus_sample", trial))] = result
        if len(self.results) > 4 * self.n_sweeps:  # a day at 1 Hz: keep it small
            del self.results[next(iter(self.results))]
        latencies = result.get("latency_s")
        positions = result.get("positions_m")
        if latencies is None or positions is None:
            return
        lat_ms = _floats(latencies) * 1e3
        pos_mm = np.asarray(positions, dtype=float) * 1e3
        ok = np.isfinite(lat_ms)
        self.latency_points.setData(pos_mm[ok], lat_ms[ok])
        velocity = result.get("conduction_velocity_m_per_s")
        site = result.get("site_m")  # analysed about its site: a V, not a line
        if velocity and np.isfinite(velocity) and ok.sum() >= 2:
            xs = np.array([pos_mm.min(), pos_mm.max()])
            if site is None:
                slope, intercept = np.polyfit(pos_mm[ok], lat_ms[ok], 1)
                self.fit_line.setData(xs, slope * xs + intercept)
                self.velocity_label.setText(f"conduction velocity: {velocity:.1f} m/s")
                return
            site_mm = float(site) * 1e3
            distance = np.abs(pos_mm - site_mm)
            slope, intercept = np.polyfit(distance[ok], lat_ms[ok], 1)
            xs = np.unique(np.clip([xs[0], site_mm, xs[1]], xs[0], xs[1]))
            self.fit_line.setData(xs, slope * np.abs(xs - site_mm) + intercept)
            self.velocity_label.setText(
                f"conduction velocity: {velocity:.1f} m/s from {site_mm:.0f} mm"
            )

    def _condition_pen(self, stimulus: dict) -> pg.QtGui.QPen:
        """One colour per (amplitude, duration) condition, listed in the legend."""
        condition = (
            round(float(stimulus.get("requested_vpp", stimulus["amplitude_vpp"])), 3),
            round(float(stimulus["duration_s"]) * 1e3, 3),
        )
        if condition not in self.conditions:
            self.conditions.append(condition)
            if self.legend is not None:
                colour = pg.intColor(len(self.conditions) - 1, hues=8, alpha=255)
                sample = pg.PlotDataItem(pen=pg.mkPen(colour, width=2))
                self.legend.addItem(
                    sample, f"{condition[0]:g} Vpp × {condition[1]:g} ms"
                )
        index = self.conditions.index(condition)
        return pg.mkPen(pg.intColor(index, hues=8, alpha=110))

    def refresh(self) -> None:
        """Draw the last sweeps and the newest arrivals (called at ~2 Hz)."""
        acquisition = self.session.acquisition
        if acquisition is None or not self.session.stimuli:
            return
        fs = self.session.sample_rate_hz
        online = getattr(self.session, "online", None)
        cleaned = online.sweeps.copy() if online is not None else {}  # atomic copy
        self.source_label.setText(
            "as analysed: hum and stimulus artifact removed, 300 Hz–5 kHz"
            if online is not None
            else "raw sweeps (no online analysis: give the electrode positions)"
        )
        self._ensure_plots(acquisition.ring.n_channels)
        stimuli = self.session.stimuli[-self.n_sweeps :]
        for k, stimulus in enumerate(stimuli):
            onset = stimulus["sample"]
            sweep = self._sweep(onset, cleaned, acquisition.ring, fs)
            if sweep is None:
                continue  # not yet analysed or complete, or already overwritten
            t_ms, epoch_uv = sweep
            pen = self._condition_pen(stimulus)
            for ch in range(epoch_uv.shape[1]):
                self.curves[ch][k].setData(t_ms, epoch_uv[:, ch], pen=pen)
        newest = stimuli[-1]["sample"]
        self._mark_arrivals(self.results.get(newest), cleaned.get(newest), fs)

    def _sweep(self, onset: int, cleaned: dict, ring, fs: float):
        """(time ms, µV) of the epoch around ``onset``: the analysis's cleaned
        epoch if there is one, else the raw samples less their baseline."""
        if onset in cleaned:
            pre, epoch_uv = cleaned[onset]
            t_ms = (np.arange(epoch_uv.shape[0]) - pre) / fs * 1e3
            shown = (t_ms >= self.window_ms[0]) & (t_ms <= self.window_ms[1])
            return t_ms[shown], epoch_uv[shown]
        if getattr(self.session, "online", None) is not None:
            return None  # wait for the analysis rather than flash a raw sweep
        pre = int(-self.window_ms[0] * fs / 1000)
        post = int(self.window_ms[1] * fs / 1000)
        try:
            counts = ring.read(onset - pre, pre + post)
        except LookupError:
            return None
        uv = counts * np.asarray(self.session.uv_per_count(), dtype=np.float64)
        uv -= uv[:pre].mean(axis=0) if pre else 0
        return np.arange(-pre, post) / fs * 1e3, uv

    def _mark_arrivals(self, result: dict | None, sweep, fs: float) -> None:
        """Each fibre's arrival on each pair, on the waveform at its latency."""
        if not result or sweep is None:
            for marks in self.ap_marks:
                marks.setData([], [])
            return
        pre, epoch_uv = sweep
        shift_s = ((result.get("quality") or {}).get("onset_shift_s")) or 0.0
        points: list[list[dict]] = [[] for _ in self.ap_marks]
        for volley in result.get("volleys") or []:
            symbol, colour = FIBRE_STYLE.get(volley["fibre"], FIBRE_STYLE["volley"])
            for ch, latency in enumerate(_floats(volley["latency_s"])):
                if ch >= len(points) or not np.isfinite(latency):
                    continue
                t_s = shift_s + latency  # from the stated onset
                row = int(np.rint(pre + t_s * fs))
                if 0 <= row < epoch_uv.shape[0] and np.isfinite(epoch_uv[row, ch]):
                    points[ch].append(
                        {"pos": (t_s * 1e3, float(epoch_uv[row, ch])),
                         "symbol": symbol, "brush": colour, "pen": colour,
                         "data": volley["fibre"].upper()}
                    )  # fmt: skip
        for marks, spots in zip(self.ap_marks, points, strict=True):
            marks.setData(spots)


def _floats(values) -> np.ndarray:
    """A list with None for 'no value' as floats with NaN."""
    return np.array([np.nan if v is None else float(v) for v in values])
