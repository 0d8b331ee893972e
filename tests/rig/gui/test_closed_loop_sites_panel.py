"""The closed-loop panel over sites (issue 18): the posterior and the tested
points per electrode configuration, a selector that follows the run until the
user picks one, the recommendation named by its configuration, the Pareto
front, and overrides in a configuration.

Driven first by the decisions of a real MixedBayesianSearch (the states the
loop publishes, built by the loop's own ``decision_state`` and the search's
``view``) through the session's event and the Qt bridge, then by a real closed
loop over sites on the simulated rig in the main window.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyqtgraph.Qt import QtCore

from rig.closed_loop import MixedBayesianSearch, MixedSpace, Objective
from rig.closed_loop.loop import decision_state
from rig.core._events import RigEvents
from rig.gui._bridge import QtBridge
from rig.gui.closed_loop_panel import ClosedLoopPanel
from rig.protocols import ObjectiveSpec

LEFT = QtCore.Qt.LeftButton
CONFIGURATIONS = ("C0-R", "C3-A4", "C5-R", "C7-R")
POSITIONS_M = (0.004, 0.012, 0.025, 0.047, 0.067, 0.087, 0.115, 0.140)
SPACE = MixedSpace(
    configurations=CONFIGURATIONS,
    electrode_positions_m=POSITIONS_M,
    n_pulses=(1, 3),
    rate_hz=(50.0,),
    polarities=(0, 1),
)
# A response that grows with amplitude and duration, strongest at C5-R.
GAIN = {"C0-R": 0.2, "C3-A4": 0.5, "C5-R": 1.0, "C7-R": 0.7}


def response(point) -> float:
    c, a, d, n, _, _ = SPACE.point(*point)
    return GAIN[c] * (a / 6.0) * (d / 6.7e-3) * (1.0 + 0.1 * (n - 1))


def decisions(n: int, *, minimise_charge: bool = True):
    """The states a closed loop publishes for ``n`` decisions of a real search."""
    search = MixedBayesianSearch(SPACE, minimise_charge=minimise_charge, seed=2)
    spec = ObjectiveSpec(measure="amplitude_uv_mean", minimise_charge=minimise_charge)
    objective = Objective(measure="amplitude_uv_mean")
    states, observed = [], None
    for k in range(n):
        point = search.propose()
        state = decision_state(
            search, spec, objective, k, point, search.last_decision.reason,
            observed=observed,
        )  # fmt: skip
        states.append({**state, **search.view()})
        score = response(point)
        search.observe(point, score)
        observed = {"trial": k, "point": list(point), "score": score}
    return search, states


@pytest.fixture
def panel(qtbot):
    events = RigEvents()
    bridge = QtBridge(events)
    widget = ClosedLoopPanel(None, bridge)
    qtbot.addWidget(widget)
    widget.show()
    widget.events = events  # the session's event the loop publishes on
    yield widget
    bridge.detach()


def cell_values(panel) -> np.ndarray:
    return np.asarray(panel.image.image, dtype=float)


def test_the_panel_shows_each_configurations_posterior_and_points(panel):
    search, states = decisions(14)
    for state in states:
        panel.events.optimiser_updated.emit(state)
    last = states[-1]
    # Follows the latest decision's configuration; lists every one searched.
    proposed = last["point"][0]
    assert panel.shown_configuration() == proposed
    listed = [
        panel.configuration.itemText(i) for i in range(panel.configuration.count())
    ]
    assert sorted(listed) == sorted(CONFIGURATIONS)
    assert panel.plot.plotItem.titleLabel.text.startswith(proposed + ": posterior at")
    # The map is that configuration's posterior mean (amplitude × duration).
    mine = np.asarray(last["posterior_by_configuration"][proposed]["mean"])
    assert mine.shape == (11, 11)
    assert np.allclose(cell_values(panel), mine, equal_nan=True)
    # The proposal is marked at its amplitude and duration.
    assert panel.proposal.data["x"].tolist() == [last["point"][1]]
    assert panel.proposal.data["y"].tolist() == pytest.approx([last["point"][2] * 1e3])
    # The recommendation's text names its configuration.
    best = last["recommended_point"]
    assert f"recommended now {best[0]} " in panel.reason.text()
    assert panel.reason.text().startswith(f"trial 13: next {proposed} ")

    # Picking each configuration redraws its own map and its own points only.
    tested = [SPACE.point(*p) for p in last["tested"]]
    maps = []
    for name in CONFIGURATIONS:
        panel.show_configuration(name)
        assert panel.shown_configuration() == name
        expected = np.asarray(last["posterior_by_configuration"][name]["mean"])
        assert np.allclose(cell_values(panel), expected)
        maps.append(expected)
        here = [p for p in tested if p.configuration == name]
        assert sorted(panel.observed.data["x"].tolist()) == sorted(
            p.amplitude_vpp for p in here
        )
        marked = len(panel.proposal.data)
        assert marked == (1 if name == proposed else 0)
    assert len({m.tobytes() for m in maps}) == len(CONFIGURATIONS)  # not one map
    # Each map passes through its configuration's best candidate (the recorded
    # map over sites): its highest cell is that candidate's mean.
    for name, shown in zip(CONFIGURATIONS, maps, strict=True):
        assert shown.max() == pytest.approx(last["by_configuration"][name]["mean"])
    # A picked configuration stays shown as decisions come.
    panel.show_configuration("C0-R")
    panel.events.optimiser_updated.emit(last)
    assert panel.shown_configuration() == "C0-R"
    panel.show_std.setCurrentIndex(1)
    assert np.allclose(
        cell_values(panel), last["posterior_by_configuration"]["C0-R"]["std"]
    )


def test_the_pareto_front_is_shown_when_the_search_has_one(panel):
    _, states = decisions(8)
    panel.events.optimiser_updated.emit(states[-1])
    front = states[-1]["pareto_front"]
    assert front and panel.front_plot.isVisible()
    x, y = panel.front.getData()
    assert x.tolist() == [f["charge_uc"] for f in front]
    assert y.tolist() == [f["response"] for f in front]
    _, plain = decisions(8, minimise_charge=False)
    panel.events.optimiser_updated.emit(plain[-1])  # no front: none shown
    assert "pareto_front" not in plain[-1]
    assert not panel.front_plot.isVisible()


def test_a_first_wave_state_still_draws_its_posterior(panel):
    """A pair run's decision ([Vpp, s, pair]) keeps the old map, no selector."""
    grid = np.arange(16.0).reshape(4, 4)
    state = {
        "trial": 3, "point": [3.0, 0.002, 0], "reason": "max UCB",
        "recommended_point": [4.0, 0.003, 0],
        "posterior": {"amplitude_vpp": [2, 3, 4, 5], "duration_s": [2e-3, 3e-3, 4e-3, 5e-3],
                      "mean": grid.tolist(), "std": grid.tolist()},
    }  # fmt: skip
    panel.events.optimiser_updated.emit(state)
    assert not panel.configuration.isVisible()
    assert np.allclose(cell_values(panel), grid)
    assert panel.reason.text().startswith("trial 3: next 3.00 Vpp × 2.00 ms, pair 0")
    assert "recommended now 4.00 Vpp × 3.00 ms, pair 0" in panel.reason.text()


SITES = """format_version = 1
[protocol]
name = "gui-sites"
seed = 5
[closed_loop]
n_stimuli = 8
inter_stimulus_interval_s = 0.3
configurations = ["C0-R", "C4-A5", "C7-R"]
amplitude_vpp = [2.0, 6.0]
duration_ms = [1.0, 4.0]
[closed_loop.objective]
measure = "amplitude_uv_mean"
minimise_charge = true
"""


def test_a_closed_loop_over_sites_runs_from_the_window(qtbot, window, tmp_path):
    protocol_file = tmp_path / "sites.toml"
    protocol_file.write_text(SITES)
    panel = window.closed_loop
    panel.approval.setChecked(True)
    assert window.protocol.load(str(protocol_file))
    qtbot.mouseClick(window.protocol.run_button, LEFT)

    def proposal(k):
        qtbot.waitUntil(
            lambda: panel.reason.text().startswith(f"trial {k}:"), timeout=10_000
        )
        return panel.state["point"]

    listed = [
        panel.configuration.itemText(i) for i in range(panel.configuration.count())
    ]
    assert listed == ["C0-R", "C4-A5", "C7-R"]
    assert panel.override_configuration.isVisibleTo(panel)  # (its tab is not shown)
    first = proposal(0)
    assert panel.shown_configuration() == first[0]
    qtbot.mouseClick(panel.accept_button, LEFT)
    proposal(1)
    qtbot.mouseClick(panel.accept_button, LEFT)
    proposal(2)
    # An override in a configuration the search does not have is refused.
    panel.override_configuration.addItem("C2-R")
    panel.override_configuration.setCurrentText("C2-R")
    qtbot.mouseClick(panel.override_button, LEFT)
    assert panel.message.text().startswith(
        "override configuration 'C2-R' is not one of the search's C0-R, C4-A5, C7-R"
    )
    panel.override_configuration.setCurrentText("C7-R")
    panel.override_amplitude.setValue(3.5)
    panel.override_duration_ms.setValue(2.0)
    qtbot.mouseClick(panel.override_button, LEFT)
    assert panel.message.text() == ""
    proposal(3)
    panel.show_configuration("C7-R")
    assert panel.overrides.data["x"].tolist() == [3.5]
    assert panel.image.image is not None  # the posterior of C7-R is drawn
    qtbot.mouseClick(panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: panel.loop is None, timeout=10_000)
    text = panel.reason.text()
    assert text.startswith("run ended: recommended C"), text
    assert len(panel.proposal.data) == 0
    stimuli = window.session.stimuli
    assert len(stimuli) == 3
    assert (stimuli[2]["cathode"], stimuli[2]["anode"]) == (7, None)
    assert stimuli[2]["requested_vpp"] == 3.5
    assert stimuli[2]["duration_s"] == 0.002
