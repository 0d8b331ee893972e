"""Camera view: live frame with tracked segments, and the displacement trace below."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets


class CameraWidget(QtWidgets.QWidget):
    """Shows the session camera's latest frame and the displacement per region."""

    def __init__(self, session, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QtWidgets.QVBoxLayout(self)
        self.view = pg.GraphicsLayoutWidget()
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True)
        self.image = pg.ImageItem()
        self.viewbox.addItem(self.image)
        self.bands = pg.ScatterPlotItem(size=6, brush="g", symbol="t1")
        self.viewbox.addItem(self.bands)
        layout.addWidget(self.view, 3)
        self.trace = pg.PlotWidget()
        self.trace.setLabel("left", "displacement", units="m")
        self.trace.setLabel("bottom", "time", units="s")
        layout.addWidget(self.trace, 1)
        self.trace_curves: list[pg.PlotDataItem] = []
        self.region_labels: list[pg.TextItem] = []
        self.status = QtWidgets.QLabel("no camera")
        layout.addWidget(self.status)

    def refresh(self) -> None:
        """Show the newest frame and tracking overlay (called at ~30 Hz)."""
        camera = self.session.camera
        latest = getattr(camera, "latest", None) if camera is not None else None
        if latest is None:
            return
        frame, _ = latest
        self.image.setImage(frame.T, autoLevels=False, levels=(0, 255))
        tracking = getattr(self.session, "tracking", None)
        if tracking is None:
            self.status.setText(f"{getattr(camera, 'frames_read', 0)} frames")
            return
        bands_px, row_px = tracking.latest_bands_px()
        if bands_px is not None:
            self.bands.setData(bands_px, np.full(len(bands_px), row_px))
        times, displacement = tracking.displacement_series()
        self._label_regions(tracking, displacement, row_px)
        while len(self.trace_curves) < displacement.shape[1]:
            i = len(self.trace_curves)
            self.trace_curves.append(self.trace.plot(pen=pg.intColor(i, hues=4)))
        for i, curve in enumerate(self.trace_curves):
            curve.setData(times, displacement[:, i], skipFiniteCheck=True)
        self.status.setText(
            f"{getattr(camera, 'frames_read', 0)} frames, "
            f"{tracking.frames_tracked} tracked"
        )

    def _label_regions(self, tracking, displacement, row_px: int) -> None:
        """Each electrode region's current displacement (mm), written over the worm."""
        while len(self.region_labels) < len(tracking.regions_mm):
            label = pg.TextItem(color="y", anchor=(0.5, 1.0))
            self.viewbox.addItem(label)
            self.region_labels.append(label)
        latest = displacement[-1] if len(displacement) else None
        for k, (lo, hi) in enumerate(tracking.regions_mm):
            x_px = (lo + hi) / 2 * tracking.px_per_mm + tracking.origin_px
            value = np.nan if latest is None else latest[k] * 1000
            text = "–" if not np.isfinite(value) else f"{value:+.2f}"
            self.region_labels[k].setText(f"{k}: {text}")
            # Alternate rows so neighbouring regions' labels do not overlap.
            self.region_labels[k].setPos(x_px, row_px - 25 - 45 * (k % 2))
