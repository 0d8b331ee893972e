"""A heatmap over amplitude × duration, shared by the parameter map and the
closed-loop posterior view."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class AmplitudeDurationHeatmap(pg.PlotWidget):
    """Cells centred on their (amplitude, duration) values, with a colour bar."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setLabel("bottom", "amplitude", units="V")
        self.setLabel("left", "duration", units="s")
        self.image = pg.ImageItem()
        self.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"))
        self.bar.setImageItem(self.image, insert_in=self.getPlotItem())

    def show_grid(
        self, amplitudes_vpp: np.ndarray, durations_s: np.ndarray, grid: np.ndarray
    ) -> None:
        """Draw ``grid[i, j]`` at (amplitude i, duration j); NaN cells at the minimum."""
        amps, durs = np.asarray(amplitudes_vpp), np.asarray(durations_s)
        finite = grid[np.isfinite(grid)]
        low = float(finite.min()) if finite.size else 0.0
        self.image.setImage(np.nan_to_num(grid, nan=low), autoLevels=False)
        a_step = (amps[-1] - amps[0]) / max(len(amps) - 1, 1) or 1.0
        d_step = (durs[-1] - durs[0]) / max(len(durs) - 1, 1) or 1e-3
        self.image.setRect(
            amps[0] - a_step / 2,
            durs[0] - d_step / 2,
            a_step * len(amps),
            d_step * len(durs),
        )
        if finite.size:
            self.bar.setLevels((low, float(max(finite.max(), low + 1e-9))))
