"""Small widgets that keep the layout honest at any window size.

Text that can be long (paths, error messages, the board's identity) must never
widen the window or be cut off: an elided label shows what fits with the whole
text in its tooltip; a wrapping label grows downwards, never sideways.
"""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtWidgets

Ignored = QtWidgets.QSizePolicy.Ignored
Preferred = QtWidgets.QSizePolicy.Preferred


class ElidedLabel(QtWidgets.QLabel):
    """One line; what does not fit is elided (``…``) and the tooltip has it all."""

    def __init__(
        self, text: str = "", *, mode=QtCore.Qt.ElideMiddle, parent=None
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        # Takes the room it is given, never asks for its text's width.
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        """Show ``text`` elided to the label's width; the tooltip has it all."""
        self._full = text
        self.setToolTip(text)
        self._elide()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        """A small width: the text is elided to whatever the layout gives."""
        return QtCore.QSize(60, super().sizeHint().height())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        """As small as an ellipsis and a few letters."""
        return QtCore.QSize(40, super().minimumSizeHint().height())

    def full_text(self) -> str:
        """The whole text, however much is shown."""
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Elide again for the new width."""
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width() - 2, 10)
        shown = self.fontMetrics().elidedText(self._full, self._mode, width)
        super().setText(shown)


def wrapping_label(text: str = "", *, style: str = "") -> QtWidgets.QLabel:
    """A label that wraps its text and never widens its parent."""
    label = QtWidgets.QLabel(text)
    label.setWordWrap(True)
    label.setSizePolicy(Ignored, Preferred)
    label.setMinimumWidth(40)
    if style:
        label.setStyleSheet(style)
    return label


def scrolling(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a frameless vertical scroll area, so a short screen scrolls
    a panel instead of forcing the window taller than the screen."""
    area = QtWidgets.QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
    bar = area.style().pixelMetric(QtWidgets.QStyle.PM_ScrollBarExtent)
    area.setMinimumWidth(widget.minimumSizeHint().width() + bar)
    return area
