"""The window's layout holds on a laptop screen and on a large monitor (issue 21).

At 1366×768 and at 2560×1440, with the simulated rig streaming and on every
tab: the window stays the size it was given (no label or panel forces it
wider or taller), no widget's text is clipped (its text fits its width, or a
wrapped text its height; elided labels carry the whole text in their tooltip),
and no two visible sibling widgets overlap.
"""

from __future__ import annotations

import pytest
from pyqtgraph.Qt import QtCore, QtWidgets

from rig.gui._widgets import ElidedLabel
from rig.gui.app import default_session_factory
from rig.gui.main_window import MainWindow

SIZES = [(1366, 768), (2560, 1440)]
LONG = "cannot write to /a/very/long/path/" + "deeper/" * 30 + "samples.i16: disk full"


def clipped_texts(window: QtWidgets.QWidget) -> list[str]:
    """Every visible label or button whose text does not fit it."""
    problems = []
    for widget in window.findChildren(QtWidgets.QWidget):
        if not widget.isVisibleTo(window) or widget.width() <= 1:
            continue
        if isinstance(widget, ElidedLabel):
            if widget.toolTip() != widget.full_text():
                problems.append(f"elided label without its text: {widget.text()!r}")
            continue
        if isinstance(widget, QtWidgets.QLabel) and widget.text():
            if widget.textFormat() == QtCore.Qt.RichText or "<" in widget.text():
                continue  # rich text lays itself out
            room = widget.contentsRect()
            if widget.wordWrap():
                if widget.heightForWidth(room.width()) > room.height() + 2:
                    problems.append(f"wrapped label cut off: {widget.text()!r}")
            else:
                text_px = widget.fontMetrics().horizontalAdvance(widget.text())
                if text_px > room.width() + 1:
                    problems.append(f"label cut off: {widget.text()!r}")
        elif isinstance(widget, QtWidgets.QPushButton) and widget.text():
            text_px = widget.fontMetrics().horizontalAdvance(widget.text())
            if text_px > widget.width() - 4:
                problems.append(f"button text cut off: {widget.text()!r}")
    return problems


def outside_the_window(window: QtWidgets.QWidget) -> list[str]:
    """Visible labels and buttons placed (partly) beyond the window's edges
    (widgets in a scroll area may scroll out of view: not counted)."""
    problems = []
    for widget in window.findChildren((QtWidgets.QLabel, QtWidgets.QAbstractButton)):
        if not widget.isVisibleTo(window) or widget.width() <= 1 or not widget.text():
            continue
        parent, scrolled = widget.parentWidget(), False
        while parent is not None and parent is not window:
            scrolled |= isinstance(parent, QtWidgets.QAbstractScrollArea)
            parent = parent.parentWidget()
        if scrolled:
            continue
        top_left = widget.mapTo(window, QtCore.QPoint(0, 0))
        box = QtCore.QRect(top_left, widget.size())
        if not window.rect().adjusted(-1, -1, 1, 1).contains(box):
            problems.append(f"{type(widget).__name__} {widget.text()!r} at {box}")
    return problems


def overlapping_siblings(window: QtWidgets.QWidget) -> list[str]:
    """Pairs of visible widgets laid out by the same layout that overlap."""
    problems = []
    for parent in [window, *window.findChildren(QtWidgets.QWidget)]:
        layout = parent.layout()
        if layout is None or not parent.isVisibleTo(window):
            continue
        laid_out = [
            layout.itemAt(i).widget()
            for i in range(layout.count())
            if layout.itemAt(i).widget() is not None
        ]
        shown = [w for w in laid_out if w.isVisibleTo(window) and w.width() > 0]
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                if a.geometry().intersects(b.geometry()):
                    problems.append(
                        f"{type(a).__name__} {a.objectName()!r} overlaps "
                        f"{type(b).__name__} {b.objectName()!r} in {type(parent).__name__}"
                    )
    return problems


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_window_holds_its_size_and_clips_or_overlaps_nothing(
    qtbot, tmp_path, width, height
):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(session_factory=default_session_factory, settings=settings)
    qtbot.addWidget(win)
    win.resize(width, height)
    win.show()
    win.connect_to("sim://?seed=1")
    qtbot.waitUntil(lambda: win.session is not None, timeout=20_000)
    qtbot.waitUntil(lambda: "received" in win.link_label.full_text(), timeout=5000)
    win.protocol.file_label.setText(
        "/home/lab/protocols/" + "long-name-" * 20 + ".toml"
    )
    win.show_error(LONG)  # a long message wraps; it never widens the window
    try:
        tabs = win.centralWidget()
        for index in range(tabs.count()):
            tabs.setCurrentIndex(index)
            qtbot.wait(300)
            name = tabs.tabText(index)
            assert (win.width(), win.height()) == (width, height), name
            assert clipped_texts(win) == [], name
            assert outside_the_window(win) == [], name
            assert overlapping_siblings(win) == [], name
    finally:
        win.close()


def test_the_layout_checks_can_fail(qtbot):
    """The checks above see a clipped label and overlapping widgets."""
    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    layout = QtWidgets.QHBoxLayout(parent)
    label = QtWidgets.QLabel("a label far too long for the twenty pixels it gets")
    layout.addWidget(label)
    parent.resize(200, 40)
    parent.show()
    label.setFixedWidth(20)
    qtbot.wait(50)
    assert clipped_texts(parent)
    other = QtWidgets.QPushButton("x", parent)
    layout.addWidget(other)
    qtbot.wait(50)
    other.setGeometry(label.geometry())  # forced on top of the label
    assert overlapping_siblings(parent)
