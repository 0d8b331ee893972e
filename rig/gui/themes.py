"""Light and dark themes: the Qt palette and every plot's background and axes.

Dark suits a dim room with a microscope; light suits a bright lab and print.
The choice is remembered in the settings.
"""

from __future__ import annotations

import pyqtgraph as pg
from pyqtgraph.Qt import QtGui, QtWidgets

THEMES = ("dark", "light")
_PLOT = {"dark": ("k", "#c8c8c8"), "light": ("w", "#303030")}


def _palette(theme: str) -> QtGui.QPalette:
    palette = QtGui.QPalette()
    if theme == "light":
        return QtWidgets.QStyleFactory.create("Fusion").standardPalette()
    colours = {
        QtGui.QPalette.Window: "#2b2b2b", QtGui.QPalette.WindowText: "#e0e0e0",
        QtGui.QPalette.Base: "#1e1e1e", QtGui.QPalette.AlternateBase: "#2b2b2b",
        QtGui.QPalette.Text: "#e0e0e0", QtGui.QPalette.Button: "#3a3a3a",
        QtGui.QPalette.ButtonText: "#e0e0e0", QtGui.QPalette.Highlight: "#2a82da",
        QtGui.QPalette.HighlightedText: "#ffffff", QtGui.QPalette.ToolTipBase: "#2b2b2b",
        QtGui.QPalette.ToolTipText: "#e0e0e0",
    }  # fmt: skip
    for role, colour in colours.items():
        palette.setColor(role, QtGui.QColor(colour))
    # A disabled control must look disabled (a Run button with no protocol).
    for role in (
        QtGui.QPalette.ButtonText,
        QtGui.QPalette.Text,
        QtGui.QPalette.WindowText,
    ):
        palette.setColor(QtGui.QPalette.Disabled, role, QtGui.QColor("#7a7a7a"))
    palette.setColor(
        QtGui.QPalette.Disabled, QtGui.QPalette.Button, QtGui.QColor("#303030")
    )
    return palette


def apply_theme(window: QtWidgets.QWidget, theme: str) -> None:
    """Apply ``theme`` ("dark" or "light") to the application and every plot
    under ``window``; plots made later follow it too."""
    if theme not in THEMES:
        raise ValueError(f"theme {theme!r} is not one of {', '.join(THEMES)}")
    app = QtWidgets.QApplication.instance()
    app.setStyle("Fusion")
    app.setPalette(_palette(theme))
    background, foreground = _PLOT[theme]
    pg.setConfigOption("background", background)
    pg.setConfigOption("foreground", foreground)
    for canvas in window.findChildren(pg.GraphicsView):
        canvas.setBackground(background)
        for item in canvas.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(foreground)
                item.setTextPen(foreground)
