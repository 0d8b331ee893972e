"""Connection panel: serial ports (refreshable), the simulated rig, board identity."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtWidgets

SIM_CHOICE = "simulated rig (sim://)"


class ConnectionPanel(QtWidgets.QGroupBox):
    """Choose a port and ask the main window to connect to it."""

    connect_requested = QtCore.pyqtSignal(str)
    disconnect_requested = QtCore.pyqtSignal()

    def __init__(self, settings=None, *, parent=None) -> None:
        super().__init__("Connection", parent)
        self.settings = settings
        layout = QtWidgets.QFormLayout(self)
        self.ports = QtWidgets.QComboBox()
        self.refresh_button = QtWidgets.QPushButton("↻")
        self.refresh_button.setToolTip("refresh the list of serial ports")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.ports, 1)
        row.addWidget(self.refresh_button)
        layout.addRow("port", row)
        self.connect_button = QtWidgets.QPushButton("Connect")
        layout.addRow(self.connect_button)
        self.identity = QtWidgets.QLabel("not connected")
        self.identity.setWordWrap(True)
        layout.addRow(self.identity)
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
