"""Closed-loop panel: the optimiser's posterior over amplitude × duration, its next
proposal, and accept / override / stop.

Fed by the session's ``optimiser_updated`` event (one per decision). A run is
started from the protocol panel with a ``[closed_loop]`` protocol; with
"approve each proposal" ticked, the loop holds every proposal until Accept or
Override is pressed.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._heatmap import AmplitudeDurationHeatmap
from rig.gui._widgets import wrapping_label


class ClosedLoopPanel(QtWidgets.QWidget):
    """Posterior mean or uncertainty map with observations and the proposal."""

    def __init__(self, session, bridge, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.loop = None  # the running rig.closed_loop.ClosedLoop, if any
        self.state: dict | None = None
        self.override_points: list[list[float]] = []  # delivered instead
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.show_std = QtWidgets.QComboBox()
        self.show_std.addItems(["posterior mean", "uncertainty (std)"])
        self.approval = QtWidgets.QCheckBox("approve each proposal")
        row.addWidget(self.show_std)
        row.addWidget(self.approval)
        row.addStretch(1)
        layout.addLayout(row)
        self.plot = AmplitudeDurationHeatmap()
        self.image = self.plot.image
        self.observed = pg.ScatterPlotItem(size=7, brush="w", pen="k")
        self.proposal = pg.ScatterPlotItem(size=16, symbol="star", brush="r")
        self.recommended = pg.ScatterPlotItem(size=18, symbol="o", brush=None, pen="y")
        self.overrides = pg.ScatterPlotItem(size=12, symbol="d", brush="m")
        for item in (self.observed, self.proposal, self.recommended, self.overrides):
            self.plot.addItem(item)
        layout.addWidget(self.plot, 1)
        self.reason = wrapping_label("no closed-loop run")
        layout.addWidget(self.reason)
        controls = QtWidgets.QHBoxLayout()
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.override_amplitude = QtWidgets.QDoubleSpinBox(
            decimals=2, minimum=0.0, maximum=20.0, value=3.0, suffix=" Vpp"
        )
        self.override_duration_ms = QtWidgets.QDoubleSpinBox(
            decimals=2, minimum=0.05, maximum=50.0, value=2.0, suffix=" ms"
        )
        self.override_button = QtWidgets.QPushButton("Override")
        self.stop_button = QtWidgets.QPushButton("Stop")
        for w in (
            self.accept_button,
            self.override_amplitude,
            self.override_duration_ms,
            self.override_button,
            self.stop_button,
        ):
            controls.addWidget(w)
        layout.addLayout(controls)
        self.message = wrapping_label("")
        self.message.setStyleSheet("color: #e66;")
        layout.addWidget(self.message)
        self.accept_button.clicked.connect(self.accept)
        self.override_button.clicked.connect(self.override)
        self.stop_button.clicked.connect(self.stop)
        self.show_std.currentIndexChanged.connect(lambda _: self.redraw())
        bridge.optimiser_updated.connect(self.on_decision)
        self._enable(False)

    def attach(self, loop) -> None:
        """Follow (and control) a ClosedLoop that is about to start: the last
        run's map, points and text are cleared (it may have had another
        objective)."""
        self.loop = loop
        self.state = None
        self.override_points: list[list[float]] = []
        self.message.setText("")
        self.plot.clear_map()
        for item in (self.observed, self.proposal, self.recommended, self.overrides):
            item.setData([], [])
        self.reason.setText("closed-loop run starting…")
        self._enable(True)

    def detach(self) -> None:
        """The run ended: show what it recommends, not a next proposal."""
        loop, self.loop = self.loop, None
        self._enable(False)
        self.proposal.setData([], [])
        best = loop.search.recommendation() if loop is not None else None
        n = len(loop.search.observations.points) if loop is not None else 0
        if best is None:
            self.reason.setText(f"run ended: no recommendation ({n} observations)")
            return
        self.recommended.setData([best[0]], [best[1] * 1e3])
        self.reason.setText(
            f"run ended: recommended {best[0]:.2f} Vpp × {best[1] * 1e3:.2f} ms, "
            f"pair {best[2]} (from {n} observed stimuli)"
        )

    def _enable(self, running: bool) -> None:
        for w in (self.accept_button, self.override_button, self.stop_button):
            w.setEnabled(running)

    def accept(self) -> None:
        """Accept the proposed stimulus."""
        if self.loop is not None:
            self.loop.accept()

    def override(self) -> None:
        """Deliver the fields' stimulus instead of the proposal."""
        if self.loop is None:
            return
        try:
            self.loop.override(
                self.override_amplitude.value(),
                self.override_duration_ms.value() / 1000.0,
            )
        except ValueError as exc:  # outside the space or the safety limits
            self.message.setText(str(exc))
            return
        self.message.setText("")
        point = [
            self.override_amplitude.value(),
            self.override_duration_ms.value() / 1e3,
        ]
        self.override_points.append([*point, 0])  # marked on the map
        self.redraw()

    def stop(self) -> None:
        """End the closed loop at the next decision."""
        if self.loop is not None:
            self.loop.stop()

    def on_decision(self, state: dict) -> None:
        """A decision was made: show it (GUI thread, via the bridge)."""
        self.state = state
        self.redraw()

    def redraw(self) -> None:
        """Draw the latest decision's posterior and observations."""
        state = self.state
        if state is None:
            return
        posterior = state.get("posterior")
        if posterior is not None:
            std = self.show_std.currentIndex() == 1
            key = "std" if std else "mean"
            objective = state.get("objective") or {}
            measure = objective.get("measure", "response")
            self.plot.set_measure(
                f"{'uncertainty (std) of ' if std else ''}score: "
                f"{objective.get('kind', '')} {measure}".strip()
            )
            self.plot.show_grid(
                posterior["amplitude_vpp"],
                posterior["duration_s"],
                np.asarray(posterior[key], dtype=float),
            )
        if self.loop is not None:
            pts = self.loop.search.observations.points
            if pts:
                self.observed.setData([p[0] for p in pts], [p[1] * 1e3 for p in pts])
        if self.override_points:
            self.overrides.setData(
                [p[0] for p in self.override_points],
                [p[1] * 1e3 for p in self.override_points],
            )
        amplitude, duration, pair = state["point"]
        self.proposal.setData([amplitude], [duration * 1e3])
        recommended = state.get("recommended_point")
        if recommended:
            self.recommended.setData([recommended[0]], [recommended[1] * 1e3])
        wait = " (waiting for approval)" if self.approval.isChecked() else ""
        best_text = (
            f"; recommended now {recommended[0]:.2f} Vpp × "
            f"{recommended[1] * 1e3:.2f} ms"
            if recommended
            else ""
        )
        self.reason.setText(
            f"trial {state['trial']}: next {amplitude:.2f} Vpp × "
            f"{duration * 1e3:.2f} ms, pair {pair} — {state['reason']}{wait}"
            f"{best_text}"
        )
