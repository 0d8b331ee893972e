"""The GUI's remote-control switch: a Remote menu and a status-bar label.

The server (rig.remote.RemoteServer) lives with the window's session: it
starts when a session is attached (if switched on) and stops before the
session closes. Remote commands run on the server's threads and reach the
views as the session's events do, so the GUI thread never waits on a client.
The Esc emergency stop stays on the GUI thread, and a remote client cannot
release it (docs/remote.md).
"""

from __future__ import annotations

import logging

from pyqtgraph.Qt import QtCore, QtWidgets

log = logging.getLogger(__name__)


class RemoteControl(QtCore.QObject):
    """Starts and stops the remote API with the session; shows who is on it."""

    def __init__(self, window, *, bind: str, enabled: bool, recordings_root) -> None:
        super().__init__(window)
        self.bind = bind
        self.recordings_root = recordings_root  # () -> the recording folder
        self.session = None
        self.server = None
        menu = window.menuBar().addMenu("&Remote")
        self.action = menu.addAction(f"Serve remote control on {bind}")
        self.action.setCheckable(True)
        self.action.setChecked(enabled)
        self.action.toggled.connect(self._toggled)
        self.copy_action = menu.addAction("Copy token")
        self.copy_action.setEnabled(False)
        self.copy_action.triggered.connect(self._copy_token)
        self.label = QtWidgets.QLabel("remote: off")
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)

    def attach(self, session) -> None:
        """The window has a session: serve it if switched on."""
        self.session = session
        if self.action.isChecked():
            self.start()

    def detach(self) -> None:
        """The session is closing: stop serving it first."""
        self.stop()
        self.session = None

    def start(self) -> None:
        """Start the server; a refusal (port in use, bad address) shows here."""
        if self.session is None or self.server is not None:
            return
        from rig.remote.server import RemoteServer

        server = RemoteServer(
            self.session, bind=self.bind, recordings_root=self.recordings_root
        )
        try:
            server.start()
        except Exception as exc:  # zmq.ZMQError, BindRefused: say why, stay off
            self.label.setText(f"remote: cannot serve on {self.bind}: {exc}")
            with QtCore.QSignalBlocker(self.action):
                self.action.setChecked(False)
            return
        self.server = server
        print(f"remote control: {server.address}, token {server.token}", flush=True)
        self.label.setToolTip(
            f"events {server.events_address}\ntoken file {server.token_file}"
        )
        self.copy_action.setEnabled(True)
        self.timer.start()
        self.refresh()

    def stop(self) -> None:
        """Stop the server (its token file goes too)."""
        self.timer.stop()
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        self.copy_action.setEnabled(False)
        self.label.setText("remote: off")
        self.label.setToolTip("")

    def refresh(self) -> None:
        """Clients and subscribers on the label (1 Hz)."""
        server = self.server
        if server is None:
            return
        self.label.setText(
            f"remote: {server.address.removeprefix('tcp://')} · "
            f"{server.clients} clients · {server.subscriptions} subscribers"
        )

    def _toggled(self, checked: bool) -> None:
        if checked:
            self.start()
        else:
            self.stop()

    def _copy_token(self) -> None:
        if self.server is not None:
            QtWidgets.QApplication.clipboard().setText(self.server.token)
