"""Camera view: live frame with tracked segments, and the displacement trace below."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._widgets import wrapping_label


class CameraWidget(QtWidgets.QWidget):
    """Shows the session camera's latest frame and the displacement per region."""

    def __init__(self, session, *, window_s=None, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        # The live traces' time-window box: the displacement trace shows the
        # same span, on the same time axis (seconds before the newest sample).
        self.window_s = window_s
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
        self.trace.setLabel("bottom", "time before the newest sample", units="s")
        self.trace.disableAutoRange()
        # The tracking's own noise (±3σ, from frame-to-frame jitter): motion
        # inside this band is not motion.
        self.noise_band = pg.LinearRegionItem(
            values=(0, 0), orientation="horizontal", movable=False,
            brush=pg.mkBrush(255, 255, 255, 40), pen=pg.mkPen(None),
        )  # fmt: skip
        self.noise_band.setToolTip("tracking noise (±3σ of frame-to-frame jitter)")
        self.trace.addItem(self.noise_band)
        self.noise_m: float | None = None
        self._y_extent_m = 0.0
        self._window_drawn: float | None = None
        layout.addWidget(self.trace, 1)
        self.trace_curves: list[pg.PlotDataItem] = []
        self.region_labels: list[pg.TextItem] = []
        self.regions_text = ""
        self.status = wrapping_label("no camera")
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
            self.status.setText(
                f"{getattr(camera, 'frames_read', 0)} frames\n{self.clock_text()}"
            )
            return
        bands_px = tracking.latest_bands_px()
        if bands_px is not None:
            found = np.isfinite(bands_px).all(axis=1)
            self.bands.setData(bands_px[found, 0], bands_px[found, 1])
        times, displacement = tracking.displacement_series()
        self._label_regions(tracking, displacement)
        ring = self.session.acquisition.ring if self.session.acquisition else None
        if ring is None or ring.end is None:
            return
        times = times - ring.end / self.session.sample_rate_hz
        window = self.window_s.value() if self.window_s is not None else 10.0
        if window != self._window_drawn:
            self._window_drawn = window
            self.trace.setXRange(-window, 0, padding=0)
        shown = times >= -window
        times, displacement = times[shown], displacement[shown]
        while len(self.trace_curves) < displacement.shape[1]:
            i = len(self.trace_curves)
            self.trace_curves.append(self.trace.plot(pen=pg.intColor(i, hues=4)))
        for i, curve in enumerate(self.trace_curves):
            curve.setData(times, displacement[:, i], skipFiniteCheck=True)
        self._fit_y(displacement)
        self._show_noise(displacement)
        self.status.setText(
            f"{self.regions_text}\n{getattr(camera, 'frames_read', 0)} frames, "
            f"{tracking.frames_tracked} tracked\n{self.clock_text()}"
        )

    def clock_text(self) -> str:
        """Whether the frames' times can be proven (docs/optical-sync.md): live
        they come from arrival times, which a busy host gets wrong by whole
        frames; the LED code proves them when a recording closes."""
        intake = self.session.camera_intake
        sync = intake.sync_led if intake is not None else None
        if sync is None:
            return "frame times: arrival only, UNPROVEN (no LED code in view)"
        return (
            "frame times: arrival live; LED code on "
            f"({sync.pulses_sent} pulses), proven when the recording closes"
        )

    def _label_regions(self, tracking, displacement) -> None:
        """Each electrode region's current displacement (mm), written over the worm."""
        while len(self.region_labels) < len(tracking.regions_mm):
            label = pg.TextItem(color="y", anchor=(0.5, 1.0))
            self.viewbox.addItem(label)
            self.region_labels.append(label)
        latest = displacement[-1] if len(displacement) else None
        values = []
        points = tracking.region_points_px()
        for k in range(len(tracking.regions_mm)):
            # The pair's number over its region (on the midline, which may
            # bend); the values go in the line below (a dock-sized image has no
            # room for text per region).
            at = points[k] if k < len(points) else None
            self.region_labels[k].setText("" if at is None else str(k))
            if at is not None:
                self.region_labels[k].setPos(at[0], at[1] - 25)
            value = np.nan if latest is None else latest[k] * 1000
            values.append(
                f"{k}: " + ("–" if not np.isfinite(value) else f"{value:+.3f}")
            )
        self.regions_text = "displacement (mm) " + " · ".join(values)

    def _show_noise(self, displacement_m: np.ndarray) -> None:
        """Shade ±3σ of the tracking's frame-to-frame jitter around zero."""
        steps = np.diff(displacement_m, axis=0)
        steps = steps[np.isfinite(steps)]
        if steps.size < 10:
            return
        # robust σ of a difference of two noisy samples, per sample
        sigma = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2)
        self.noise_m = sigma
        self.noise_band.setRegion((-3 * sigma, 3 * sigma))

    def _fit_y(self, displacement_m: np.ndarray) -> None:
        """Symmetric Y range on a 1-2-5 step: changes (and repaints) only rarely."""
        finite = np.abs(displacement_m[np.isfinite(displacement_m)])
        peak = float(finite.max()) if finite.size else 0.0
        # at least ±0.1 mm, so a few µm of tracking noise does not look like a
        # twitch; at most ±50 cm
        steps = [s * 10.0**k for k in range(-4, 0) for s in (1, 2, 5)]
        extent = next((s for s in steps if s >= peak * 1.1), steps[-1])
        if extent != self._y_extent_m:
            self._y_extent_m = extent
            self.trace.setYRange(-extent, extent, padding=0)
