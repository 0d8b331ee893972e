"""Connection panel: serial ports (refreshable), the simulated rig, board identity."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtWidgets

from rig.gui._widgets import ElidedLabel

SIM_CHOICE = "simulated rig (sim://)"


class ConnectionPanel(QtWidgets.QWidget):
    """Choose a port and ask the main window to connect to it."""

    connect_requested = QtCore.pyqtSignal(str)
    disconnect_requested = QtCore.pyqtSignal()

    def __init__(self, settings=None, *, parent=None) -> None:
        super().__init__(parent)  # the dock shows the title
        self.settings = settings
        # One row (the window's tool bar): port, refresh, connect, identity.
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.ports = QtWidgets.QComboBox()
        self.ports.setMinimumContentsLength(18)
        self.refresh_button = QtWidgets.QPushButton("↻")
        self.refresh_button.setToolTip("refresh the list of serial ports")
        self.connect_button = QtWidgets.QPushButton("Disconnect")
        self.connect_button.setMinimumWidth(self.connect_button.sizeHint().width())
        self.connect_button.setText("Connect")
        self.identity = ElidedLabel("not connected", mode=QtCore.Qt.ElideRight)
        row.addWidget(QtWidgets.QLabel("port"))
        row.addWidget(self.ports)
        row.addWidget(self.refresh_button)
        row.addWidget(self.connect_button)
        row.addWidget(self.identity, 1)
        self.refresh_button.clicked.connect(self.refresh_ports)
        self.connect_button.clicked.connect(self._clicked)
        self.connected = False
        self.refresh_ports()

    def refresh_ports(self) -> None:
        """List the serial ports the OS reports, plus the simulated rig."""
        from firmware_bridge.transport import list_serial_ports

        current = self.ports.currentText() or (
            self.settings.value("last_port", SIM_CHOICE)
            if self.settings
            else SIM_CHOICE
        )
        self.ports.clear()
        self.ports.addItem(SIM_CHOICE)
        for port in list_serial_ports():
            self.ports.addItem(port.device)
        index = self.ports.findText(str(current))
        self.ports.setCurrentIndex(max(index, 0))

    def url(self) -> str:
        """The URL for the chosen entry."""
        text = self.ports.currentText()
        return "sim://?seed=1" if text == SIM_CHOICE else text

    def _clicked(self) -> None:
        if self.connected:
            self.disconnect_requested.emit()
            return
        if self.settings is not None:
            self.settings.setValue("last_port", self.ports.currentText())
        self.connect_button.setEnabled(False)
        self.connect_requested.emit(self.url())

    def show_connected(self, info) -> None:
        """Show the board's identity after the handshake."""
        self.connected = info is not None
        self.connect_button.setEnabled(True)
        self.connect_button.setText("Disconnect" if self.connected else "Connect")
        if info is None:
            self.identity.setText("not connected")
        else:
            self.identity.setText(
                f"{info.board_id} · firmware {info.firmware_version} · "
                f"protocol v{info.protocol_version} · {info.max_channels} ch max"
            )
