"""A heatmap over amplitude × duration, shared by the parameter map and the
closed-loop posterior view.

Cells without data are left empty (transparent), never painted at the colour
map's minimum, so an untested condition cannot read as "no response". Hovering
a cell says its value and how many stimuli it holds. The colour bar is
labelled with what it shows; amplitudes are in Vpp, durations in ms.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class AmplitudeDurationHeatmap(pg.PlotWidget):
    """Cells centred on their (amplitude, duration) values, with a colour bar.

    ``show_grid`` takes a regular grid (the closed loop's posterior) on real
    axes; ``show_cells`` takes the conditions actually tested (any spacing),
    one cell each, the tested values written on the axes.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setLabel("bottom", "amplitude (Vpp)")
        self.setLabel("left", "duration (ms)")
        self.image = pg.ImageItem()
        self.addItem(self.image)
        self.bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("viridis"), label=""
        )
        self.bar.setImageItem(self.image, insert_in=self.getPlotItem())
        # What each cell holds, for the hover text: (i, j) -> (value, n)
        self.cells: dict[tuple[int, int], tuple[float, int]] = {}
        self._to_cell = None  # (x, y) in data -> (i, j) or None
        self._amplitudes: np.ndarray = np.zeros(0)
        self._durations_ms: np.ndarray = np.zeros(0)
        self.scene().sigMouseMoved.connect(self._hover)

    def set_measure(self, label: str) -> None:
        """Name what the colours show (with its unit) on the colour bar."""
        self.bar.getAxis("left").setLabel(label)  # where pyqtgraph puts it

    def show_grid(
        self,
        amplitudes_vpp,
        durations_s,
        grid: np.ndarray,
        counts: np.ndarray | None = None,
    ) -> None:
        """Draw ``grid[i, j]`` at (amplitude i, duration j) on real axes (a
        regular grid); NaN cells stay empty."""
        amps = np.asarray(amplitudes_vpp, dtype=float)
        durs_ms = np.asarray(durations_s, dtype=float) * 1e3
        a_step = (amps[-1] - amps[0]) / max(len(amps) - 1, 1) or 1.0
        d_step = (durs_ms[-1] - durs_ms[0]) / max(len(durs_ms) - 1, 1) or 1.0
        self._draw(grid, counts)
        self.image.setRect(
            amps[0] - a_step / 2, durs_ms[0] - d_step / 2,
            a_step * len(amps), d_step * len(durs_ms),
        )  # fmt: skip
        self.getAxis("bottom").setTicks(None)
        self.getAxis("left").setTicks(None)
        self._amplitudes, self._durations_ms = amps, durs_ms

        def to_cell(x: float, y: float):
            i = int(np.floor((x - amps[0] + a_step / 2) / a_step))
            j = int(np.floor((y - durs_ms[0] + d_step / 2) / d_step))
            return (i, j) if 0 <= i < len(amps) and 0 <= j < len(durs_ms) else None

        self._to_cell = to_cell

    def show_cells(
        self, amplitudes_vpp, durations_s, grid: np.ndarray, counts: np.ndarray
    ) -> None:
        """One cell per tested condition, at its index; the axes name the
        tested values (so unequal steps are drawn as they are)."""
        amps = np.asarray(amplitudes_vpp, dtype=float)
        durs_ms = np.asarray(durations_s, dtype=float) * 1e3
        self._draw(grid, counts)
        self.image.setRect(-0.5, -0.5, len(amps), len(durs_ms))
        self.getAxis("bottom").setTicks([[(i, f"{a:g}") for i, a in enumerate(amps)]])
        self.getAxis("left").setTicks([[(j, f"{d:g}") for j, d in enumerate(durs_ms)]])
        self._amplitudes, self._durations_ms = amps, durs_ms

        def to_cell(x: float, y: float):
            i, j = round(x), round(y)
            return (i, j) if 0 <= i < len(amps) and 0 <= j < len(durs_ms) else None

        self._to_cell = to_cell

    def clear_map(self) -> None:
        """Show nothing (a new run has no map yet)."""
        self.image.clear()
        self.cells = {}
        self._to_cell = None
        self.bar.setLevels((0.0, 1.0))
        self.getAxis("bottom").setTicks(None)
        self.getAxis("left").setTicks(None)

    def cell_text(self, i: int, j: int) -> str:
        """What hovering cell (i, j) says."""
        where = f"{self._amplitudes[i]:g} Vpp × {self._durations_ms[j]:g} ms"
        value, n = self.cells.get((i, j), (np.nan, 0))
        if n == 0 and not np.isfinite(value):
            return f"{where}: not tested"
        shown = f"{value:.3g}" if np.isfinite(value) else "no value"
        return f"{where}: {shown}" + (f" (n = {n})" if n else "")

    def _draw(self, grid: np.ndarray, counts: np.ndarray | None) -> None:
        grid = np.asarray(grid, dtype=float)
        self.cells = {
            (i, j): (float(grid[i, j]), int(counts[i, j]) if counts is not None else 0)
            for i in range(grid.shape[0])
            for j in range(grid.shape[1])
            if np.isfinite(grid[i, j]) or (counts is not None and counts[i, j])
        }
        # NaN stays NaN: pyqtgraph draws it transparent (an empty cell).
        self.image.setImage(grid, autoLevels=False)
        finite = grid[np.isfinite(grid)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            self.bar.setLevels((low, max(high, low + 1e-9)))

    def _hover(self, scene_pos) -> None:
        if self._to_cell is None:
            return
        point = self.getPlotItem().vb.mapSceneToView(scene_pos)
        cell = self._to_cell(point.x(), point.y())
        self.setToolTip("" if cell is None else self.cell_text(*cell))
