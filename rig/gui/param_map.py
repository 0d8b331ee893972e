"""Parameter map: a heatmap over amplitude × duration filling in trial by trial.

One cell per tested condition (empty where nothing was tested, or nothing
measurable came back), the number of stimuli in each on hover, the colour bar
named after the measure. A design with one amplitude or one duration is drawn
as a curve against the other, with n at each point.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._heatmap import AmplitudeDurationHeatmap
from rig.gui._widgets import wrapping_label

MEASURES = {
    "response probability": "responded",
    "AP amplitude (µV)": "amplitude_uv_mean",
    "conduction velocity (m/s)": "conduction_velocity_m_per_s",
    "peak displacement (mm)": "peak_displacement_mm",
}


class ParameterMapWidget(QtWidgets.QWidget):
    """Mean of the chosen measure per (amplitude, duration) cell."""

    def __init__(self, session, bridge, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.records: list[dict] = []
        layout = QtWidgets.QVBoxLayout(self)
        self.measure = QtWidgets.QComboBox()
        self.measure.addItems(list(MEASURES))
        layout.addWidget(self.measure)
        self.plot = AmplitudeDurationHeatmap()
        self.image = self.plot.image
        layout.addWidget(self.plot, 1)
        # 1-D designs: the measure against the one parameter that varies
        self.curve_plot = pg.PlotWidget()
        self.curve = self.curve_plot.plot(symbol="o", symbolBrush="c", pen="c")
        self.curve_labels: list[pg.TextItem] = []
        layout.addWidget(self.curve_plot, 1)
        self.curve_plot.hide()
        self.count = wrapping_label("0 trials")
        layout.addWidget(self.count)
        self._motion: dict[int, dict] = {}  # stimulus sample -> twitch result
        bridge.response_measured.connect(self._on_result)
        bridge.motion_measured.connect(self._on_motion)
        self.measure.currentIndexChanged.connect(lambda _: self.redraw())

    def _on_result(self, trial: int, result: dict) -> None:
        motion = self._motion.pop(result["stimulus_sample"], None)
        if motion is not None:
            result = {**result, "peak_displacement_mm": motion["peak_displacement_mm"]}
        self.records.append(result)
        self.redraw()

    def _on_motion(self, trial: int, motion: dict) -> None:
        """The twitch arrives ~0.4 s after the electrical result: fill it in."""
        for record in reversed(self.records):
            if record.get("stimulus_sample") == motion["stimulus_sample"]:
                record["peak_displacement_mm"] = motion["peak_displacement_mm"]
                self.redraw()
                return
        self._motion[motion["stimulus_sample"]] = motion

    def redraw(self) -> None:
        """Recompute the cell means and counts and redraw."""
        name = self.measure.currentText()
        key = MEASURES[name]
        tested = [r for r in self.records if "amplitude_vpp" in r and "duration_s" in r]
        self.count.setText(f"{len(self.records)} trials")
        if not tested:
            return
        amps_all = np.round([float(r["amplitude_vpp"]) for r in tested], 3)
        durs_all = np.round([float(r["duration_s"]) for r in tested], 6)
        values = np.array([_number(r.get(key)) for r in tested])
        amps, durs = np.unique(amps_all), np.unique(durs_all)
        grid = np.full((len(amps), len(durs)), np.nan)
        counts = np.zeros((len(amps), len(durs)), dtype=int)
        for i, a in enumerate(amps):
            for j, d in enumerate(durs):
                cell = values[(amps_all == a) & (durs_all == d)]
                counts[i, j] = cell.size  # stimuli given, measurable or not
                if np.isfinite(cell).any():
                    grid[i, j] = np.nanmean(cell)
        one_d = len(amps) == 1 or len(durs) == 1
        self.plot.setVisible(not one_d)
        self.curve_plot.setVisible(one_d)
        if one_d:
            self._draw_curve(name, amps, durs, grid, counts)
        else:
            self.plot.set_measure(name)
            self.plot.show_cells(amps, durs, grid, counts)

    def _draw_curve(self, name, amps, durs, grid, counts) -> None:
        """A 1-D design: the measure against the parameter that varies."""
        if len(amps) > 1 or len(durs) == 1:
            x, y, n = amps, grid[:, 0], counts[:, 0]
            self.curve_plot.setLabel("bottom", "amplitude (Vpp)")
            fixed = f"at {durs[0] * 1e3:g} ms"
        else:
            x, y, n = durs * 1e3, grid[0, :], counts[0, :]
            self.curve_plot.setLabel("bottom", "duration (ms)")
            fixed = f"at {amps[0]:g} Vpp"
        self.curve_plot.setLabel("left", name)
        self.curve_plot.setTitle(fixed)
        shown = np.isfinite(y)
        self.curve.setData(x[shown], y[shown])
        while len(self.curve_labels) < len(x):
            label = pg.TextItem(anchor=(0.5, 1.2), color="w")
            self.curve_plot.addItem(label)
            self.curve_labels.append(label)
        for k, label in enumerate(self.curve_labels):
            if k < len(x) and shown[k]:
                label.setText(f"n = {n[k]}")
                label.setPos(x[k], y[k])
                label.show()
            else:
                label.hide()


def _number(value) -> float:
    """A record's value as a float (True/False for response probability; None
    and non-numbers are no value)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
