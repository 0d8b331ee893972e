"""Parameter map: a heatmap over amplitude × duration filling in trial by trial."""

from __future__ import annotations

import numpy as np
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
        layout.addWidget(self.plot)
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
        """Recompute the cell means and redraw."""
        key = MEASURES[self.measure.currentText()]
        rows = [
            (r["amplitude_vpp"], r["duration_s"], float(r[key]))
            for r in self.records
            if r.get(key) is not None and "amplitude_vpp" in r and "duration_s" in r
        ]
        self.count.setText(f"{len(self.records)} trials")
        if not rows:
            return
        arr = np.array(rows)
        amps = np.unique(np.round(arr[:, 0], 3))
        durs = np.unique(np.round(arr[:, 1], 6))
        grid = np.full((len(amps), len(durs)), np.nan)
        for i, a in enumerate(amps):
            for j, d in enumerate(durs):
                sel = (np.round(arr[:, 0], 3) == a) & (np.round(arr[:, 1], 6) == d)
                values = arr[sel, 2]
                values = values[np.isfinite(values)]
                if values.size:
                    grid[i, j] = values.mean()
        self.plot.show_grid(amps, durs, grid)
