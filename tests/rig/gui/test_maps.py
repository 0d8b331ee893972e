"""Parameter and closed-loop maps that do not mislead (issue 21, item 4): an
untested cell is empty, not "0 % response"; each cell's n on hover; the colour
bar names its measure; Vpp and ms on the axes; a 1-D design is a curve."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rig.core._events import RigEvents
from rig.gui._bridge import QtBridge
from rig.gui.param_map import ParameterMapWidget


def record(amplitude_vpp, duration_s, responded, amplitude_uv=None):
    return {
        "amplitude_vpp": amplitude_vpp,
        "duration_s": duration_s,
        "responded": responded,
        "amplitude_uv_mean": amplitude_uv,
        "stimulus_sample": int(amplitude_vpp * 1e6 + duration_s * 1e9),
    }


@pytest.fixture
def param_map(qtbot):
    widget = ParameterMapWidget(SimpleNamespace(), QtBridge(RigEvents()))
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    return widget


def test_untested_cells_are_empty_and_each_cell_tells_its_n(param_map):
    # 2, 3 and 5 Vpp (unequal steps) × 2 and 4 ms; 5 Vpp × 4 ms never tested.
    design = [(2.0, 2e-3, False), (2.0, 2e-3, False), (3.0, 2e-3, True),
              (3.0, 2e-3, False), (5.0, 2e-3, True), (2.0, 4e-3, False),
              (3.0, 4e-3, True), (3.0, 4e-3, True), (3.0, 4e-3, True)]  # fmt: skip
    for k, (a, d, r) in enumerate(design):
        param_map._on_result(k, {**record(a, d, r), "stimulus_sample": k})
    heatmap = param_map.plot
    image = heatmap.image.image
    assert image.shape == (3, 2)
    assert np.isnan(image[2, 1])  # untested: empty, not the colour map's floor
    np.testing.assert_allclose(image[:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(image[:2, 1], [0.0, 1.0])
    assert heatmap.cell_text(2, 1) == "5 Vpp × 4 ms: not tested"
    assert heatmap.cell_text(1, 0) == "3 Vpp × 2 ms: 0.5 (n = 2)"
    assert heatmap.cell_text(1, 1) == "3 Vpp × 4 ms: 1 (n = 3)"
    # The tested values on the axes, whatever their spacing; units named.
    assert heatmap.getAxis("bottom")._tickLevels == [[(0, "2"), (1, "3"), (2, "5")]]
    assert heatmap.getAxis("left")._tickLevels == [[(0, "2"), (1, "4")]]
    assert heatmap.getAxis("bottom").labelText == "amplitude (Vpp)"
    assert heatmap.getAxis("left").labelText == "duration (ms)"
    assert heatmap.bar.getAxis("left").labelText == "response probability"


def test_hovering_a_cell_shows_its_text(param_map, qtbot):
    for k, (a, d) in enumerate([(2.0, 2e-3), (4.0, 2e-3), (2.0, 3e-3), (4.0, 3e-3)]):
        param_map._on_result(k, {**record(a, d, True, 50.0 + k), "stimulus_sample": k})
    param_map.measure.setCurrentText("AP amplitude (µV)")
    heatmap = param_map.plot
    qtbot.wait(50)
    scene_pos = heatmap.getPlotItem().vb.mapViewToScene(pg_point(1.0, 0.0))
    heatmap._hover(scene_pos)
    assert heatmap.toolTip() == "4 Vpp × 2 ms: 51 (n = 1)"
    assert heatmap.bar.getAxis("left").labelText == "AP amplitude (µV)"


def test_a_measure_nothing_answered_leaves_its_cells_empty(param_map):
    # Stimulated, but no twitch measured: n is known, the value is not.
    for k, (a, d) in enumerate([(2.0, 2e-3), (4.0, 2e-3), (2.0, 3e-3), (4.0, 3e-3)]):
        param_map._on_result(k, {**record(a, d, True), "stimulus_sample": k})
    param_map.measure.setCurrentText("peak displacement (mm)")
    assert np.isnan(param_map.plot.image.image).all()
    assert param_map.plot.cell_text(0, 0) == "2 Vpp × 2 ms: no value (n = 1)"


def test_a_one_dimensional_design_is_a_curve_with_n(param_map):
    for k, a in enumerate([2.0, 3.0, 3.0, 4.0, 5.0]):
        param_map._on_result(k, {**record(a, 3e-3, a >= 3.0), "stimulus_sample": k})
    assert param_map.curve_plot.isVisible() and not param_map.plot.isVisible()
    x, y = param_map.curve.getData()
    np.testing.assert_allclose(x, [2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(y, [0.0, 1.0, 1.0, 1.0])
    labels = [label.toPlainText() for label in param_map.curve_labels]
    assert labels == ["n = 1", "n = 2", "n = 1", "n = 1"]
    assert param_map.curve_plot.getAxis("bottom").labelText == "amplitude (Vpp)"


def pg_point(x, y):
    from pyqtgraph.Qt import QtCore

    return QtCore.QPointF(x, y)
