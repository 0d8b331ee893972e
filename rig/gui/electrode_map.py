"""Electrode map: the worm from head to tail, its stimulation electrodes and its
recording pairs, with the chosen configuration highlighted (issue 18).

Drawn with QPainter, to scale along the body: the stimulation electrodes as
numbered circles on the raceway bed (the cathode filled red and marked −, the
anode blue and marked +, "R" at the tail end when the current returns through
the common return), the recording pairs as small bars above the body, numbered
as their channels. Clicking an electrode makes it the cathode (the anode kept
if it still differs; otherwise the common return); ``configuration_clicked``
says which configuration that asks for, and the stimulation panel picks it if
the rig allows it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from firmware_bridge.stimulus import format_configuration, parse_configuration

CATHODE = QtGui.QColor("#d33")
ANODE = QtGui.QColor("#36c")
IDLE = QtGui.QColor("#888")
PAIR = QtGui.QColor("#2a2")
BODY = QtGui.QColor(205, 150, 140)


class ElectrodeMap(QtWidgets.QWidget):
    """The electrodes and recording pairs along the body, to scale."""

    configuration_clicked = QtCore.pyqtSignal(str)

    def __init__(
        self,
        electrodes_m: Sequence[float],
        pair_centres_m: Sequence[float] | None = None,
        *,
        body_length_m: float | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.electrodes_m = tuple(float(x) for x in electrodes_m)
        self.pair_centres_m = tuple(float(x) for x in (pair_centres_m or ()))
        ends = [*self.electrodes_m, *self.pair_centres_m, 0.0]
        self.body_length_m = float(body_length_m or max(ends) * 1.08 or 0.15)
        self.cathode: int | None = 0 if self.electrodes_m else None
        self.anode: int | None = 1 if len(self.electrodes_m) > 1 else None
        self.setMinimumHeight(58)
        self.setMaximumHeight(72)
        self.setMinimumWidth(160)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.setMouseTracking(True)
        self._update_tooltip()

    # ------------------------------------------------------------ state

    @property
    def configuration(self) -> str | None:
        """The highlighted configuration ("C0-A1", "C3-R"), or None."""
        if self.cathode is None:
            return None
        return format_configuration(self.cathode, self.anode)

    def set_configuration(self, text: str | None) -> None:
        """Highlight ``text`` ("C3-A4", "C3-R"); None or "" highlights none."""
        if text:
            self.cathode, self.anode = parse_configuration(text)
        else:
            self.cathode = self.anode = None
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        if self.cathode is None:
            self.setToolTip("no configuration chosen")
            return
        where = (
            self.electrodes_m[self.cathode] * 1e3
            if self.cathode < len(self.electrodes_m)
            else float("nan")
        )
        anode = "the common return" if self.anode is None else f"electrode {self.anode}"
        self.setToolTip(
            f"{self.configuration}: cathode electrode {self.cathode} "
            f"({where:g} mm from the head, the site), anode {anode}"
        )

    # ------------------------------------------------------------ geometry

    def x_of(self, position_m: float) -> float:
        """Widget x of a position along the body."""
        margin = 12.0
        usable = max(1.0, self.width() - 2 * margin - 14)  # room for "R"
        return margin + usable * position_m / self.body_length_m

    def electrode_at(self, x: float, y: float) -> int | None:
        """The electrode drawn under (x, y), or None."""
        cy = self._bed_y()
        for k, pos in enumerate(self.electrodes_m):
            if abs(self.x_of(pos) - x) <= 7 and abs(cy - y) <= 8:
                return k
        return None

    def _bed_y(self) -> float:
        return self.height() - 12.0

    # ------------------------------------------------------------ Qt

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        """A click on an electrode asks for it as the cathode."""
        k = self.electrode_at(event.pos().x(), event.pos().y())
        if k is None:
            return super().mousePressEvent(event)
        anode = self.anode if self.anode is not None and self.anode != k else None
        self.configuration_clicked.emit(format_configuration(k, anode))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Draw the body, the recording pairs and the electrodes."""
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.Antialiasing)
        palette = self.palette()
        text_colour = palette.color(QtGui.QPalette.WindowText)
        font = p.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        p.setFont(font)
        bed_y = self._bed_y()
        body_y = bed_y - 16
        # The worm: a tapered band from head (left) to tail.
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(BODY)
        x0, x1 = self.x_of(0.0), self.x_of(self.body_length_m)
        p.drawRoundedRect(QtCore.QRectF(x0, body_y - 5, x1 - x0, 10), 5, 5)
        p.setPen(text_colour)
        p.drawText(QtCore.QPointF(x0, body_y - 9), "head")
        # Recording pairs above the body.
        for ch, centre in enumerate(self.pair_centres_m):
            x = self.x_of(centre)
            p.setPen(QtGui.QPen(PAIR, 2))
            p.drawLine(
                QtCore.QPointF(x - 4, body_y - 8), QtCore.QPointF(x + 4, body_y - 8)
            )
            p.setPen(PAIR)
            p.drawText(QtCore.QRectF(x - 12, body_y - 24, 24, 14),
                       QtCore.Qt.AlignCenter, f"R{ch}")  # fmt: skip
        # Stimulation electrodes on the bed.
        for k, pos in enumerate(self.electrodes_m):
            x = self.x_of(pos)
            colour, mark = IDLE, ""
            if k == self.cathode:
                colour, mark = CATHODE, "−"
            elif k == self.anode:
                colour, mark = ANODE, "+"
            p.setPen(QtGui.QPen(colour.darker(130), 1))
            p.setBrush(colour if mark else palette.color(QtGui.QPalette.Base))
            p.drawEllipse(QtCore.QPointF(x, bed_y), 6, 6)
            p.setPen(QtCore.Qt.white if mark else text_colour)
            p.drawText(QtCore.QRectF(x - 6, bed_y - 6, 12, 12),
                       QtCore.Qt.AlignCenter, mark or str(k))  # fmt: skip
        if self.cathode is not None and self.anode is None:
            p.setPen(ANODE)
            p.drawText(QtCore.QRectF(self.width() - 16, bed_y - 7, 14, 14),
                       QtCore.Qt.AlignCenter, "R")  # fmt: skip
        p.end()
