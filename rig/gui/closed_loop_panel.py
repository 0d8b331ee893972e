"""Closed-loop panel: the optimiser's posterior over amplitude × duration, its next
proposal, and accept / override / stop.

Fed by the session's ``optimiser_updated`` event (one per decision). A run is
started from the protocol panel with a ``[closed_loop]`` protocol; with
"approve each proposal" ticked, the loop holds every proposal until Accept or
Override is pressed.

Over sites (a search over electrode configurations, points
``[configuration, Vpp, s, pulses, Hz, polarity]``) the map is one
configuration's: a selector picks it (by default the latest decision's, at the
end the recommendation's), the map is the posterior mean (or std) over
amplitude × duration at that configuration's best pulses, rate and polarity,
with the points tested there; a Pareto search also shows its front (charge per
phase against response).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from rig.gui._heatmap import AmplitudeDurationHeatmap
from rig.gui._widgets import wrapping_label

POLARITY_TEXT = ("positive first", "negative first")


def describe(point) -> str:
    """One line for a point: ``C3-R 4 Vpp × 3 ms`` (the train and polarity
    when not one pulse, positive first) or, first wave, ``… , pair 0``."""
    if isinstance(point[0], str):
        c, a, d, n, r, p = point
        text = f"{c} {a:.3g} Vpp × {d * 1e3:.3g} ms"
        if n > 1:
            text += f" × {n} at {r:g} Hz"
        if p:
            text += f", {POLARITY_TEXT[int(p)]}"
        return text
    a, d, pair = point
    return f"{a:.2f} Vpp × {d * 1e3:.2f} ms, pair {pair}"


def is_site_point(point) -> bool:
    """True for a point over sites (its first field the configuration)."""
    return bool(point) and isinstance(point[0], str)


class ClosedLoopPanel(QtWidgets.QWidget):
    """Posterior mean or uncertainty map with observations and the proposal."""

    def __init__(self, session, bridge, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.loop = None  # the running rig.closed_loop.ClosedLoop, if any
        self.state: dict | None = None
        self.override_points: list[list] = []  # delivered instead
        # over sites: the configuration the user picked (None: follow the run)
        self.chosen_configuration: str | None = None
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.show_std = QtWidgets.QComboBox()
        self.show_std.addItems(["posterior mean", "uncertainty (std)"])
        self.configuration = QtWidgets.QComboBox()
        self.configuration.setToolTip(
            "the electrode configuration whose posterior is shown"
        )
        self.approval = QtWidgets.QCheckBox("approve each proposal")
        row.addWidget(self.show_std)
        row.addWidget(self.configuration)
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
        plots = QtWidgets.QHBoxLayout()
        plots.addWidget(self.plot, 2)
        # The Pareto front of a search that also minimises charge.
        self.front_plot = pg.PlotWidget()
        self.front_plot.setLabel("bottom", "charge per phase (µC)")
        self.front_plot.setLabel("left", "response (posterior mean)")
        self.front_plot.setTitle("Pareto front")
        self.front = self.front_plot.plot([], [], pen="c", symbol="o", symbolSize=7)
        plots.addWidget(self.front_plot, 1)
        layout.addLayout(plots, 1)
        self.reason = wrapping_label("no closed-loop run")
        layout.addWidget(self.reason)
        controls = QtWidgets.QHBoxLayout()
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.override_configuration = QtWidgets.QComboBox()
        self.override_configuration.setToolTip("the override's configuration")
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
            self.override_configuration,
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
        self.configuration.activated.connect(
            lambda i: self.show_configuration(self.configuration.itemText(i))
        )
        bridge.optimiser_updated.connect(self.on_decision)
        self._set_configurations(())
        self.front_plot.hide()
        self._enable(False)

    # ------------------------------------------------------------ run

    def attach(self, loop) -> None:
        """Follow (and control) a ClosedLoop that is about to start: the last
        run's map, points and text are cleared (it may have had another
        objective)."""
        self.loop = loop
        self.state = None
        self.override_points = []
        self.chosen_configuration = None
        self.message.setText("")
        self.plot.clear_map()
        self.plot.setTitle(None)
        for item in (self.observed, self.proposal, self.recommended, self.overrides):
            item.setData([], [])
        self.front.setData([], [])
        self.front_plot.hide()
        self._set_configurations(getattr(loop.space, "configurations", ()))
        self.reason.setText("closed-loop run starting…")
        self._enable(True)

    def detach(self) -> None:
        """The run ended: show what it recommends, not a next proposal."""
        loop, self.loop = self.loop, None
        self._enable(False)
        best = loop.search.recommendation() if loop is not None else None
        n = len(loop.search.observations.points) if loop is not None else 0
        if self.state is not None:
            self.state = {**self.state, "point": None}  # no next proposal
            if best is not None:
                self.state["recommended_point"] = list(best)
        if (
            best is not None
            and is_site_point(best)
            and self.chosen_configuration is None
        ):
            self._select(best[0])  # the recommendation's configuration
        self.redraw()
        self.proposal.setData([], [])
        if best is None:
            self.reason.setText(f"run ended: no recommendation ({n} observations)")
            return
        self.reason.setText(
            f"run ended: recommended {describe(list(best))} (from {n} observed stimuli)"
        )

    def _enable(self, running: bool) -> None:
        for w in (self.accept_button, self.override_button, self.stop_button):
            w.setEnabled(running)

    def _set_configurations(self, configurations) -> None:
        """The selectors list the run's configurations (hidden for pairs)."""
        for box in (self.configuration, self.override_configuration):
            box.clear()
            box.addItems(list(configurations))
            box.setVisible(bool(configurations))

    def _offer(self, configurations) -> None:
        """Add the configurations the selectors do not list yet."""
        for name in configurations:
            if self.configuration.findText(name) < 0:
                self.configuration.addItem(name)
                self.override_configuration.addItem(name)
                self.configuration.setVisible(True)
                self.override_configuration.setVisible(True)

    def _select(self, configuration: str) -> None:
        """Show ``configuration`` in the selector (no redraw)."""
        self._offer([configuration])
        self.configuration.setCurrentText(configuration)
        self.override_configuration.setCurrentText(configuration)

    def show_configuration(self, configuration: str) -> None:
        """The user picked a configuration: show its posterior and points,
        and keep it shown as decisions come (until the next run)."""
        self.chosen_configuration = configuration
        self._select(configuration)
        self.redraw()

    # ------------------------------------------------------------ controls

    def accept(self) -> None:
        """Accept the proposed stimulus."""
        if self.loop is not None:
            self.loop.accept()

    def override(self) -> None:
        """Deliver the fields' stimulus instead of the proposal (over sites, in
        the chosen configuration, with the proposal's train and polarity)."""
        if self.loop is None:
            return
        amplitude = self.override_amplitude.value()
        duration_s = self.override_duration_ms.value() / 1e3
        proposed = (self.state or {}).get("point") or []
        try:
            if is_site_point(proposed):
                configuration = self.override_configuration.currentText()
                _, _, _, n, rate, polarity = proposed
                self.loop.override(
                    amplitude,
                    duration_s,
                    configuration=configuration,
                    n_pulses=n,
                    rate_hz=rate,
                    polarity=polarity,
                )
                point = [configuration, amplitude, duration_s, n, rate, polarity]
            else:
                self.loop.override(amplitude, duration_s)
                point = [amplitude, duration_s, 0]
        except ValueError as exc:  # outside the space or the safety limits
            self.message.setText(str(exc))
            return
        self.message.setText("")
        self.override_points.append(point)  # marked on the map
        self.redraw()

    def stop(self) -> None:
        """End the closed loop at the next decision."""
        if self.loop is not None:
            self.loop.stop()

    # ------------------------------------------------------------ drawing

    def on_decision(self, state: dict) -> None:
        """A decision was made: show it (GUI thread, via the bridge)."""
        self.state = state
        self._offer(state.get("by_configuration") or {})
        point = state.get("point")
        if is_site_point(point) and self.chosen_configuration is None:
            self._select(point[0])  # follow the latest decision
        self.redraw()

    def shown_configuration(self) -> str | None:
        """The configuration the map shows (None: a first-wave run)."""
        return self.configuration.currentText() or None

    def redraw(self) -> None:
        """Draw the latest decision's posterior and observations."""
        state = self.state
        if state is None:
            return
        point = state.get("point")
        recommended = state.get("recommended_point")
        sites = is_site_point(point) or is_site_point(recommended)
        config = self.shown_configuration() if sites else None
        self._draw_map(state, config)
        tested = self._tested(state, sites)
        here = [p for p in tested if not sites or p[0] == config]
        self.observed.setData(
            [p[1] if sites else p[0] for p in here],
            [(p[2] if sites else p[1]) * 1e3 for p in here],
        )
        overrides = [p for p in self.override_points if not sites or p[0] == config]
        self.overrides.setData(
            [p[1] if sites else p[0] for p in overrides],
            [(p[2] if sites else p[1]) * 1e3 for p in overrides],
        )
        self._mark(self.proposal, point, config)
        self._mark(self.recommended, recommended, config)
        self._draw_front(state.get("pareto_front"))
        if point is None:
            return  # the run ended: detach says what it recommends
        wait = " (waiting for approval)" if self.approval.isChecked() else ""
        best_text = f"; recommended now {describe(recommended)}" if recommended else ""
        self.reason.setText(
            f"trial {state['trial']}: next {describe(point)} — "
            f"{state['reason']}{wait}{best_text}"
        )

    def _tested(self, state: dict, sites: bool) -> list:
        """Every tested point: over sites from the published state, else from
        the search."""
        if sites:
            return list(state.get("tested") or [])
        if self.loop is not None:
            return list(self.loop.search.observations.points)
        return []

    @staticmethod
    def _mark(item, point, config) -> None:
        """Mark ``point`` on the map if it is in the configuration shown."""
        if not point or (config is not None and point[0] != config):
            item.setData([], [])
        elif is_site_point(point):
            item.setData([point[1]], [point[2] * 1e3])
        else:
            item.setData([point[0]], [point[1] * 1e3])

    def _draw_map(self, state: dict, config: str | None) -> None:
        """The posterior (first wave) or the shown configuration's."""
        if config is None:
            posterior = state.get("posterior")
            title = None
        else:
            posterior = (state.get("posterior_by_configuration") or {}).get(config)
            title = config
            if posterior is not None:
                n, rate, p = (posterior[k] for k in ("n_pulses", "rate_hz", "polarity"))
                title += (
                    f": posterior at {n} pulse{'s' if n > 1 else ''}"
                    + (f" at {rate:g} Hz" if n > 1 else "")
                    + f", {POLARITY_TEXT[int(p)]}"
                )
            else:
                title += ": no posterior yet"
                self.plot.clear_map()
        self.plot.setTitle(title)
        if posterior is None:
            return
        std = self.show_std.currentIndex() == 1
        objective = state.get("objective") or {}
        measure = objective.get("measure", "response")
        self.plot.set_measure(
            f"{'uncertainty (std) of ' if std else ''}score: "
            f"{objective.get('kind', '')} {measure}".strip()
        )
        self.plot.show_grid(
            posterior["amplitude_vpp"],
            posterior["duration_s"],
            np.asarray(posterior["std" if std else "mean"], dtype=float),
        )

    def _draw_front(self, front) -> None:
        """Charge against response of the front's points (hidden without one)."""
        if not front:
            self.front.setData([], [])
            self.front_plot.hide()
            return
        self.front.setData(
            [f["charge_uc"] for f in front], [f["response"] for f in front]
        )
        self.front_plot.show()
