"""At the bench (issue 21, item 6): notes and an event-mark key recorded on the
board's clock, figure export from every tab, light and dark themes that are
remembered, and a shortcut list that matches the keys the window answers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pyqtgraph as pg
import pytest
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

import rig.recording
from rig.gui.app import default_session_factory
from rig.gui.main_window import SHORTCUTS, MainWindow
from tests.rig.gui.conftest import LEFT, settings_in


def test_notes_and_marks_are_recorded_on_the_boards_clock(qtbot, window, tmp_path):
    window.recording.folder.setText(str(tmp_path / "runs"))
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is not None, timeout=5000)
    qtbot.wait(200)
    qtbot.keyClick(window, QtCore.Qt.Key_M)  # the mark key
    qtbot.wait(200)
    qtbot.keyClick(window, QtCore.Qt.Key_N, QtCore.Qt.ControlModifier)
    assert window.notes.text.hasFocus()
    qtbot.keyClicks(window.notes.text, "worm moved off electrode 3")  # 'm's typed
    qtbot.keyClick(window.notes.text, QtCore.Qt.Key_Return)
    qtbot.wait(200)
    path = window.recording.path_label.full_text()
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is None, timeout=5000)
    rec = rig.recording.open(path)
    [mark] = rec.events_of("mark")  # typing the note's 'm's made no marks
    [note] = rec.events_of("note")
    assert note["text"] == "worm moved off electrode 3"
    recorded = rec.sample_numbers()  # the board's sample number of every row
    assert recorded[0] < mark["sample"] < note["sample"] <= recorded[-1]
    assert window.notes.history.count() == 2


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_every_tab_exports_its_plots(qtbot, window, tmp_path, suffix):
    tabs = window.centralWidget()
    for index in range(tabs.count()):
        tabs.setCurrentIndex(index)
        qtbot.wait(100)
        written = window.export_current(str(tmp_path / f"tab{index}{suffix}"))
        assert written, tabs.tabText(index)
        for path in written:
            data = path.read_bytes()
            if suffix == ".png":
                assert data[:8] == b"\x89PNG\r\n\x1a\n"
                assert QtGui.QImage(str(path)).width() > 100
            else:
                assert ET.fromstring(data).tag.endswith("svg")
    assert window.export_current(str(tmp_path / "figure.jpg")) == []
    assert "suffix .jpg is not one of .png, .svg" in window.error_label.full_text()


def test_the_theme_switches_every_plot_and_is_remembered(qtbot, window, tmp_path):
    window.set_theme("light")
    app = QtWidgets.QApplication.instance()
    assert app.palette().color(QtGui.QPalette.Window).lightness() > 200
    for canvas in window.findChildren(pg.GraphicsView):
        assert canvas.backgroundBrush().color().lightness() == 255
    window.close()
    again = MainWindow(
        session_factory=default_session_factory, settings=settings_in(tmp_path)
    )
    qtbot.addWidget(again)
    assert again.theme == "light"
    again.set_theme("dark")
    assert app.palette().color(QtGui.QPalette.Window).lightness() < 80
    again.close()


def test_the_shortcut_list_is_the_keys_the_window_answers(qtbot, window):
    window.show_shortcuts()
    labels = [w.text() for w in window.shortcuts_dialog.findChildren(QtWidgets.QLabel)]
    for keys, what in SHORTCUTS:
        assert f"<b>{keys}</b>" in labels and what in labels
    bound = {a.shortcut().toString() for a in window.findChildren(QtWidgets.QAction)}
    bound |= {s.key().toString() for s in window.findChildren(QtWidgets.QShortcut)}
    assert {keys for keys, _ in SHORTCUTS} <= bound


def test_the_readme_lists_every_shortcut():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for keys, _ in SHORTCUTS:
        assert f"\n| {keys} | " in readme, keys


def test_a_refused_note_stays_in_the_line_with_the_reason(qtbot, window):
    """No recording: Session.note refuses; the text is not lost."""
    assert window.session.recorder.writer is None
    window.notes.text.setText("electrode 2 dry")
    window.notes.add_note()
    assert window.notes.text.text() == "electrode 2 dry"
    assert "no recording in progress" in window.notes.status.text()
    assert window.notes.history.count() == 0


def test_the_subject_form_goes_into_the_recording_and_refuses_bad_values(
    qtbot, window, tmp_path
):
    """Issue 21, item 6 with issue 19's rules: what the form shows is what the
    metadata holds; a bad value names the form's field and no recording starts."""
    form = window.subject
    form.fields["subject ID"].setText("worm-12")
    form.fields["species"].setText("Lumbricus terrestris")
    form.fields["sex"].setCurrentText("O")
    form.fields["description"].setText("hermaphrodite, clitellate adult")
    form.fields["weight (g)"].setText("4.5")
    form.fields["age"].setText("ninety days")  # not ISO 8601
    form.fields["experimenter"].setText("Darwin, Charles; Wallace, Alfred")
    window.recording.folder.setText(str(tmp_path / "runs"))
    qtbot.mouseClick(window.recording.button, LEFT)
    assert window.session.recorder.writer is None  # refused before any file
    assert not (tmp_path / "runs").exists()
    message = window.recording.message.text()
    assert "age" in message and "ISO 8601" in message and "\n" not in message
    form.fields["age"].setText("P90D")
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is not None, timeout=5000)
    path = window.recording.path_label.full_text()
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is None, timeout=5000)
    meta = rig.recording.open(path).metadata
    assert meta["subject"]["subject_id"] == "worm-12"
    assert meta["subject"]["sex"] == "O" and meta["subject"]["age"] == "P90D"
    assert meta["subject"]["weight_kg"] == pytest.approx(0.0045)  # typed in g
    assert meta["session"]["experimenter"] == ["Darwin, Charles", "Wallace, Alfred"]
    form.show_session()  # and the form reads back what the session holds
    assert form.fields["weight (g)"].text() == "4.5"
    assert form.fields["experimenter"].text() == "Darwin, Charles; Wallace, Alfred"
