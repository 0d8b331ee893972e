"""The electrode map and the configuration picker (issue 18): a real Qt widget
drawing the electrodes and recording pairs along the body, the chosen
configuration highlighted; a pulse picked there reaches the board through that
configuration."""

from __future__ import annotations

import functools

import pytest
from pyqtgraph.Qt import QtCore, QtGui

from firmware_bridge.stimulus import all_configurations
from rig.gui.app import default_session_factory
from rig.gui.connection import SIM_CHOICE
from rig.gui.electrode_map import ANODE, CATHODE, ElectrodeMap
from rig.gui.main_window import MainWindow
from rig.rig_file import RigDescription
from rig.safety import SafetyLimits
from tests.rig.gui.conftest import settings_in

LEFT = QtCore.Qt.LeftButton
ELECTRODES_M = (0.004, 0.012, 0.025, 0.047, 0.067, 0.087, 0.115, 0.140)
PAIRS_M = (0.0375, 0.0575, 0.0775, 0.0975)


def colour_at(widget, x: float, y: float) -> QtGui.QColor:
    return widget.grab().toImage().pixelColor(round(x), round(y))


def near(a: QtGui.QColor, b: QtGui.QColor, tol: int = 40) -> bool:
    return all(
        abs(u - v) <= tol for u, v in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True)
    )


@pytest.fixture
def electrode_map(qtbot):
    widget = ElectrodeMap(ELECTRODES_M, PAIRS_M, body_length_m=0.15)
    qtbot.addWidget(widget)
    widget.resize(400, 64)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_the_map_draws_the_chosen_cathode_red_and_anode_blue(qtbot, electrode_map):
    m = electrode_map
    bed = m._bed_y()
    m.set_configuration("C4-A6")
    assert (m.cathode, m.anode, m.configuration) == (4, 6, "C4-A6")
    # The drawn pixels (just off the glyph's centre): cathode red, anode blue,
    # another electrode neither.
    cathode_px = colour_at(m, m.x_of(ELECTRODES_M[4]) - 3, bed - 3)
    anode_px = colour_at(m, m.x_of(ELECTRODES_M[6]) - 3, bed - 3)
    idle_px = colour_at(m, m.x_of(ELECTRODES_M[2]) - 3, bed - 3)
    assert near(cathode_px, CATHODE) and near(anode_px, ANODE)
    assert not near(idle_px, CATHODE) and not near(idle_px, ANODE)
    assert "cathode electrode 4 (67 mm from the head" in m.toolTip()
    m.set_configuration("C2-R")
    assert near(colour_at(m, m.x_of(ELECTRODES_M[2]) - 3, bed - 3), CATHODE)
    assert not near(colour_at(m, m.x_of(ELECTRODES_M[4]) - 3, bed - 3), CATHODE)
    assert "the common return" in m.toolTip()


def test_clicking_an_electrode_asks_for_it_as_the_cathode(qtbot, electrode_map):
    m = electrode_map
    m.set_configuration("C0-A1")
    bed = round(m._bed_y())
    with qtbot.waitSignal(m.configuration_clicked) as blocker:
        qtbot.mouseClick(
            m, LEFT, pos=QtCore.QPoint(round(m.x_of(ELECTRODES_M[5])), bed)
        )
    assert blocker.args == ["C5-A1"]  # the anode kept
    with qtbot.waitSignal(m.configuration_clicked) as blocker:
        qtbot.mouseClick(
            m, LEFT, pos=QtCore.QPoint(round(m.x_of(ELECTRODES_M[1])), bed)
        )
    assert blocker.args == ["C1-R"]  # the anode was electrode 1: the common return
    with qtbot.assertNotEmitted(m.configuration_clicked):
        qtbot.mouseClick(m, LEFT, pos=QtCore.QPoint(2, 2))  # not an electrode


def open_window(qtbot, tmp_path, rig=None):
    win = MainWindow(
        session_factory=functools.partial(default_session_factory, rig=rig),
        settings=settings_in(tmp_path),
    )
    qtbot.addWidget(win)
    win.show()
    win.connection.ports.setCurrentText(SIM_CHOICE)
    qtbot.mouseClick(win.connection.connect_button, LEFT)
    qtbot.waitUntil(lambda: win.session is not None, timeout=20_000)
    return win


def test_the_picker_offers_every_configuration_and_the_pulse_uses_it(qtbot, tmp_path):
    win = open_window(qtbot, tmp_path)
    try:
        stim = win.stimulation
        items = [
            stim.configuration.itemText(k) for k in range(stim.configuration.count())
        ]
        assert items == all_configurations(8)  # the simulated board's 8 electrodes
        assert stim.configuration.currentText() == "C0-A1"
        # The map shows the simulated raceway: its electrodes and pairs.
        assert stim.electrode_map.electrodes_m == ELECTRODES_M
        assert stim.electrode_map.pair_centres_m == pytest.approx(PAIRS_M)
        stim.configuration.setCurrentText("C6-R")
        assert stim.electrode_map.configuration == "C6-R"
        qtbot.mouseClick(stim.arm_button, LEFT)
        qtbot.waitUntil(lambda: stim.arm_button.text() == "Disarm", timeout=5000)
        qtbot.mouseClick(stim.fire_button, LEFT)
        qtbot.waitUntil(lambda: len(win.session.stimuli) == 1, timeout=5000)
        delivered = win.session.stimuli[0]
        assert (delivered["cathode"], delivered["anode"]) == (6, None)
        # A click on the map picks that cathode in the picker.
        m = stim.electrode_map
        qtbot.mouseClick(
            m,
            LEFT,
            pos=QtCore.QPoint(round(m.x_of(ELECTRODES_M[3])), round(m._bed_y())),
        )
        assert stim.configuration.currentText() == "C3-R"
    finally:
        win.close()


def test_the_picker_holds_only_what_the_rig_file_allows(qtbot, tmp_path):
    limits = SafetyLimits(allowed_configurations=("C0-A1", "C7-R", "C7-A6"))
    win = open_window(qtbot, tmp_path, RigDescription(limits=limits))
    try:
        stim = win.stimulation
        items = [
            stim.configuration.itemText(k) for k in range(stim.configuration.count())
        ]
        assert items == ["C0-A1", "C7-A6", "C7-R"]  # in the board's order
        m = stim.electrode_map
        qtbot.mouseClick(
            m,
            LEFT,
            pos=QtCore.QPoint(round(m.x_of(ELECTRODES_M[2])), round(m._bed_y())),
        )
        assert stim.configuration.currentText() == "C0-A1"  # C2-A1 is not allowed
        assert "C2-A1 is not one the rig allows" in stim.message.text()
    finally:
        win.close()
