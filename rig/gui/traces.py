"""Live traces: all channels scrolling, µV scale bar, window/gain/autoscale/filter.

Samples are scaled by ``session.uv_per_count()`` (the gain calibration's µV per
count, else the board's nominal gain), as the sweeps and the online analysis
are. The band-pass and the hum notch (mains and harmonics) are the analysis's
(``analysis.filters.bandpass_sos``, ``hum_notch_sos``), designed once per
settings change and run causally on the samples new since the
last refresh, with its state carried over (``CausalFilter``): the filtered
window is one pass over the stream, with no seam at a refresh and no start-up
transient at the window's left edge.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from analysis.filters import CausalFilter, bandpass_sos, hum_notch_sos

NOTCH_CHOICES = {"no notch": None, "50 Hz notch": 50.0, "60 Hz notch": 60.0}


class LiveTracesWidget(QtWidgets.QWidget):
    """Stacked channel traces pulled from the session's ring at display rate."""

    def __init__(self, session, *, settings=None, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.settings = settings
        layout = QtWidgets.QVBoxLayout(self)
        controls = QtWidgets.QHBoxLayout()
        self.window_s = QtWidgets.QDoubleSpinBox(
            minimum=0.05, maximum=30.0, value=2.0, singleStep=0.5, suffix=" s shown"
        )
        self.spacing_uv = QtWidgets.QDoubleSpinBox(
            decimals=0, minimum=5.0, maximum=50_000.0, value=200.0, singleStep=50.0,
            suffix=" µV/div",
        )  # fmt: skip
        self.autoscale = QtWidgets.QCheckBox("autoscale")
        self.filter = QtWidgets.QCheckBox("300 Hz–5 kHz")
        self.filter.setToolTip("band-pass 300 Hz–5 kHz (the analysis's filter)")
        # Mains hum and its harmonics; 50 or 60 Hz is the lab's, so remembered.
        self.notch = QtWidgets.QComboBox()
        self.notch.addItems(list(NOTCH_CHOICES))
        self.notch.setToolTip("mains hum and its 2nd and 3rd harmonics")
        if settings is not None:
            self.notch.setCurrentText(str(settings.value("notch", "no notch")))
        self.notch.currentTextChanged.connect(self._remember_notch)
        self.window_s.setToolTip("how much of the newest signal is shown")
        self.spacing_uv.setToolTip("vertical distance between the traces")
        for widget in (
            self.window_s,
            self.spacing_uv,
            self.autoscale,
            self.filter,
            self.notch,
        ):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout.addLayout(controls)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "time before the newest sample", units="s")
        self.plot.setLabel("left", "pair · centre from the head")
        # We decimate and set the ranges ourselves: pyqtgraph's auto-range and
        # downsampling rescan all 60 000 points per channel on every paint.
        self.plot.disableAutoRange()
        layout.addWidget(self.plot)
        self.curves = []
        self.scale_bar = pg.PlotDataItem(pen=pg.mkPen("w", width=3))
        self.scale_text = pg.TextItem(anchor=(0, 0.5))
        self.plot.addItem(self.scale_bar)
        self.plot.addItem(self.scale_text)
        self.markers: list[pg.InfiniteLine] = []
        self._layout: tuple | None = None  # (window s, spacing µV, channels) drawn
        # With the filter on: the filtered newest window, µV (n, channels).
        self.window_uv: np.ndarray | None = None
        self._filter: CausalFilter | None = None
        self._filter_key: tuple | None = None  # the settings it was designed for
        self._sos: np.ndarray | None = None  # filter_sos()'s design, and for what
        self._sos_settings: tuple | None = None
        self._filtered_from = 0  # the first sample through this filter
        self._filtered_end = 0  # the sample after the newest filtered

    def refresh(self) -> None:
        """Pull the newest window from the ring and redraw (called at ~30 Hz)."""
        ring = self.session.acquisition.ring if self.session.acquisition else None
        if ring is None or ring.end is None:
            return
        fs = self.session.sample_rate_hz
        n = int(self.window_s.value() * fs)
        # µV per count: the gain calibration's per channel, else the nominal gain
        uv_per_count = np.float32(self.session.uv_per_count())
        if self.filter_sos() is not None:
            first, data = self._filtered(ring, n, fs, uv_per_count)
        else:
            self._filter = None
            first, block = ring.latest(n)
            data = block.astype(np.float32) * uv_per_count
        if data.shape[0] < 2:
            return
        data = data - np.median(data[::50], axis=0)  # baseline; a subsample is enough
        spacing = self.spacing_uv.value()
        if self.autoscale.isChecked():
            spacing = float(max(6 * np.percentile(np.abs(data), 99.5), 1.0))
        # Time relative to the newest sample: the axes stay still while the data
        # scrolls, so pyqtgraph neither re-lays out ticks nor paints twice.
        end = first + data.shape[0]
        width_px = max(self.plot.width(), 200)
        t_shown, data_shown = minmax_decimate(data, fs, n_bins=width_px)
        while len(self.curves) < data.shape[1]:
            pen = pg.intColor(len(self.curves), hues=max(data.shape[1], 4))
            self.curves.append(self.plot.plot(pen=pen))
        for ch, curve in enumerate(self.curves):
            curve.setData(
                t_shown, data_shown[:, ch] - ch * spacing, skipFiniteCheck=True
            )
        layout = (self.window_s.value(), spacing, data.shape[1])
        if layout != self._layout:  # only when the user changes something
            self._layout = layout
            window, n_channels = layout[0], layout[2]
            self.plot.setXRange(-window, 0, padding=0)
            self.plot.setYRange(-(n_channels - 0.5) * spacing, 0.5 * spacing, padding=0)
            x0 = -0.98 * window
            self.scale_bar.setData([x0, x0], [spacing / 2, 0])
            self.scale_text.setText(f"{spacing / 2:.0f} µV")
            self.scale_text.setPos(x0, spacing / 4)
            self.plot.getAxis("left").setTicks(
                [self.channel_ticks(spacing, n_channels)]
            )
        self._draw_markers(end, -data.shape[0] / fs)

    def channel_ticks(self, spacing: float, n_channels: int) -> list:
        """Each trace's label at its baseline: the pair and where its centre is
        along the body (from the rig file), so a trace is never anonymous."""
        positions_m = getattr(self.session, "positions_m", None)
        ticks = []
        for ch in range(n_channels):
            where = ""
            if positions_m is not None and ch < len(positions_m):
                where = f" · {positions_m[ch] * 1000:.0f} mm"
            ticks.append((-ch * spacing, f"{ch}{where}"))
        return ticks

    def filter_sos(self) -> np.ndarray | None:
        """The filter the display runs (band-pass, hum notch, both), or None;
        designed again only when a setting changes (refresh runs at 30 Hz)."""
        fs = self.session.sample_rate_hz
        mains_hz = NOTCH_CHOICES.get(self.notch.currentText())
        settings = (fs, self.filter.isChecked(), mains_hz)
        if settings != self._sos_settings:
            sections = [bandpass_sos(fs)] if self.filter.isChecked() else []
            if mains_hz is not None:
                sections.append(hum_notch_sos(fs, mains_hz))
            self._sos = np.vstack(sections) if sections else None
            self._sos_settings = settings
        return self._sos

    def _remember_notch(self, text: str) -> None:
        if self.settings is not None:
            self.settings.setValue("notch", text)

    def _filtered(
        self, ring, n: int, fs: float, uv_per_count: np.ndarray
    ) -> tuple[int, np.ndarray]:
        """The newest ``n`` samples (µV), filtered in one causal pass."""
        sos = self.filter_sos()
        assert sos is not None
        key = (fs, n, ring.n_channels, uv_per_count.tobytes(), sos.tobytes())
        new = None
        if self._filter is not None and key == self._filter_key:
            try:  # only the samples new since the last refresh
                new = ring.read(self._filtered_end, ring.end - self._filtered_end)
            except LookupError:  # overwritten while we were away: start again
                new = None
        if new is None:
            self._filtered_from, new = ring.latest(n)
            self._filtered_end = self._filtered_from
            self.window_uv = np.zeros((n, ring.n_channels), dtype=np.float32)
            # Designed once per settings change; started as if the input had
            # always been its first sample (no swoop from the amplifier's offset).
            first_uv = new[0] * uv_per_count if new.shape[0] else None
            self._filter = CausalFilter(sos, ring.n_channels, initial=first_uv)
            self._filter_key = key
        assert self._filter is not None and self.window_uv is not None
        if new.shape[0]:
            filtered = self._filter.process(new * uv_per_count)
            k = min(filtered.shape[0], n)
            self.window_uv[: n - k] = self.window_uv[k:]
            self.window_uv[n - k :] = filtered[-k:]
            self._filtered_end += new.shape[0]
        valid = min(n, self._filtered_end - self._filtered_from)
        return self._filtered_end - valid, self.window_uv[n - valid :]

    def _draw_markers(self, end_sample: int, t0: float) -> None:
        fs = self.session.sample_rate_hz
        times = [(s["sample"] - end_sample) / fs for s in self.session.stimuli[-50:]]
        times = [x for x in times if t0 <= x <= 0]
        while len(self.markers) < len(times):
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen("y", style=2))
            self.plot.addItem(line)
            self.markers.append(line)
        for i, line in enumerate(self.markers):
            if i < len(times):
                line.setPos(times[i])
                line.show()
            else:
                line.hide()


def minmax_decimate(
    data: np.ndarray, fs_hz: float, *, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's minimum and maximum, in time order: what a screen column shows.

    Keeps every spike visible (a plain stride would drop them) while drawing
    2·n_bins points per channel instead of every sample. Times are seconds
    before the newest sample (``data[-1]`` is at ``-1 / fs_hz``).
    """
    n = data.shape[0]
    per_bin = n // n_bins
    if per_bin < 2:
        return (np.arange(n) - n) / fs_hz, data
    used = per_bin * n_bins
    # Channel-major so each bin is contiguous (5x faster than reducing strided).
    binned = np.ascontiguousarray(data[n - used :].T).reshape(-1, n_bins, per_bin)
    lo, hi = binned.min(axis=2), binned.max(axis=2)
    out = np.empty((2 * n_bins, data.shape[1]), dtype=data.dtype)
    out[0::2], out[1::2] = lo.T, hi.T
    # Bin k spans samples n - used + k·per_bin … + per_bin - 1: its centre time.
    centres = (np.arange(n_bins) * per_bin + (per_bin - 1) / 2 - used) / fs_hz
    return np.repeat(centres, 2), out
