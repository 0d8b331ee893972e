"""The lab app's main window, connected to a fresh simulated rig (sim:// opens a
real pty that the Session reads with pyserial), for the tests of this folder."""

from __future__ import annotations

import pytest
from pyqtgraph.Qt import QtCore

from rig.gui.app import default_session_factory
from rig.gui.connection import SIM_CHOICE
from rig.gui.main_window import MainWindow

LEFT = QtCore.Qt.LeftButton


def settings_in(folder):
    """Window settings in ``folder`` (never the user's own)."""
    return QtCore.QSettings(str(folder / "settings.ini"), QtCore.QSettings.IniFormat)


@pytest.fixture
def window(qtbot, tmp_path):
    """A shown window, connected to the simulated rig through its Connect button."""
    win = MainWindow(
        session_factory=default_session_factory, settings=settings_in(tmp_path)
    )
    qtbot.addWidget(win)
    win.show()
    win.connection.ports.setCurrentText(SIM_CHOICE)
    qtbot.mouseClick(win.connection.connect_button, LEFT)
    qtbot.waitUntil(lambda: win.session is not None, timeout=20_000)
    yield win
    win.close()
