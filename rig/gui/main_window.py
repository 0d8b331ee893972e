"""MainWindow: docks of thin views over one Session; status bar with link health."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtWidgets

from rig.gui._bridge import QtBridge
from rig.gui._worker import run_in_background
from rig.gui.camera_view import CameraWidget
from rig.gui.closed_loop_panel import ClosedLoopPanel
from rig.gui.connection import ConnectionPanel
from rig.gui.param_map import ParameterMapWidget
from rig.gui.protocol_panel import ProtocolPanel
from rig.gui.recording_panel import RecordingPanel
from rig.gui.remote_control import RemoteControl
from rig.gui.stimulation import StimulationPanel
from rig.gui.sweeps import SweepsWidget
from rig.gui.traces import LiveTracesWidget

DISPLAY_HZ = 33  # a little over 30, so timer slack still leaves ≥ 30 redraws/s


class MainWindow(QtWidgets.QMainWindow):
    """The lab app's window. Owns no rig state: everything lives in the Session."""

    session_opened = QtCore.pyqtSignal(object)

    def __init__(
        self,
        *,
        session_factory,
        settings=None,
        remote_bind: str = "127.0.0.1:5555",
        remote: bool = False,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("neurorig")
        self.resize(1400, 900)
        self.settings = settings or QtCore.QSettings("neurorig", "neurorig")
        self.session_factory = session_factory  # url -> started Session
        self.session = None
        self.bridge = None
        self.views: list = []
        self.connection = ConnectionPanel(self.settings)
        self.connection.connect_requested.connect(self.connect_to)
        self.connection.disconnect_requested.connect(self.disconnect)
        self._dock("Connection", self.connection, QtCore.Qt.LeftDockWidgetArea)
        placeholder = QtWidgets.QLabel("Connect to a board or the simulated rig.")
        placeholder.setAlignment(QtCore.Qt.AlignCenter)
        self.setCentralWidget(placeholder)
        self.link_label = QtWidgets.QLabel("no link")
        self.statusBar().addPermanentWidget(self.link_label)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setStyleSheet("color: #e66;")
        self.statusBar().addWidget(self.error_label, 1)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.setInterval(int(1000 / DISPLAY_HZ))
        self.timer.timeout.connect(self.refresh)
        self.slow_timer = QtCore.QTimer(self)
        self.slow_timer.setInterval(500)
        self.slow_timer.timeout.connect(self.refresh_slow)
        self.frames_drawn = 0
        self._last_counts = None
        # The remote API (rig.remote), served with the session when switched on.
        self.remote = RemoteControl(
            self,
            bind=remote_bind,
            enabled=remote,
            recordings_root=lambda: self.recording.folder.text(),
        )
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _dock(self, title, widget, area):
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # ------------------------------------------------------------ connection

    def connect_to(self, url: str) -> None:
        """Open and start a session on a worker thread; build the views when up."""
        self.error_label.setText(f"connecting to {url} …")
        run_in_background(
            lambda: self.session_factory(url),
            on_done=self.attach_session,
            on_error=self._connect_failed,
        )

    def _connect_failed(self, exc) -> None:
        self.error_label.setText(f"cannot connect: {exc}")
        self.connection.show_connected(None)

    def attach_session(self, session) -> None:
        """Build every view over ``session`` and start pulling at display rate."""
        self.session = session
        self.bridge = QtBridge(session.events, self)
        self.bridge.error_occurred.connect(self.show_error)
        self.bridge.fault_raised.connect(self.show_error)
        self.traces = LiveTracesWidget(session)
        self.sweeps = SweepsWidget(session, self.bridge)
        self.camera = CameraWidget(session, window_s=self.traces.window_s)
        self.param_map = ParameterMapWidget(session, self.bridge)
        self.stimulation = StimulationPanel(session, self.bridge)
        self.closed_loop = ClosedLoopPanel(session, self.bridge)
        self.protocol = ProtocolPanel(
            session, self.bridge, self.settings, closed_loop_panel=self.closed_loop
        )
        self.recording = RecordingPanel(session, self.bridge, self.settings)
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self.traces, "Live traces")
        tabs.addTab(self.sweeps, "Stimulus-locked")
        tabs.addTab(self.param_map, "Parameter map")
        tabs.addTab(self.closed_loop, "Closed loop")
        self.setCentralWidget(tabs)
        self.docks = [
            self._dock("Stimulation", self.stimulation, QtCore.Qt.LeftDockWidgetArea),
            self._dock("Protocol", self.protocol, QtCore.Qt.LeftDockWidgetArea),
            self._dock("Recording", self.recording, QtCore.Qt.LeftDockWidgetArea),
            self._dock("Camera", self.camera, QtCore.Qt.RightDockWidgetArea),
        ]
        state = self.settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        self.views = [self.traces, self.camera]
        self.connection.show_connected(session.device.info)
        self.error_label.setText("; ".join(session.setup_warnings()))
        self.timer.start()
        self.slow_timer.start()
        self.remote.attach(session)
        self.session_opened.emit(session)

    def disconnect(self) -> None:
        """Close the session (disarms the board) and drop the views."""
        self.timer.stop()
        self.slow_timer.stop()
        self.remote.detach()
        session, self.session = self.session, None
        if self.bridge is not None:
            self.bridge.detach()
        for dock in getattr(self, "docks", []):
            self.removeDockWidget(dock)
            dock.deleteLater()
        self.docks = []
        self.setCentralWidget(QtWidgets.QLabel("disconnected"))
        self.connection.show_connected(None)
        if session is not None:
            run_in_background(session.close, on_error=self.show_error)

    # ------------------------------------------------------------ display

    def refresh(self) -> None:
        """Pull the latest data into the views (30 Hz)."""
        if self.session is None:
            return
        for view in self.views:
            view.refresh()
        self.frames_drawn += 1

    def refresh_slow(self) -> None:
        """Sweeps, recording panel and link health (2 Hz)."""
        if self.session is None:
            return
        self.sweeps.refresh()
        self.recording.refresh()
        acq = self.session.acquisition
        if acq is None:
            return
        c = acq.counters
        rate = ""
        if self._last_counts is not None:
            rate = f"{(c.samples_received - self._last_counts) * 2 / 1000:.1f} kS/s · "
        self._last_counts = c.samples_received
        ring = acq.ring
        fill = (
            0
            if ring.end is None
            else min(1.0, (ring.end - (ring.oldest or 0)) / ring.capacity)
        )
        self.link_label.setText(
            f"{rate}{c.samples_received} received · {c.samples_lost} lost · "
            f"{c.frames_corrupt} corrupt frames · buffer {fill:.0%} · "
            f"relay high-water {c.relay_queue_high_water}"
        )

    def show_error(self, error) -> None:
        """Show an error in the window (never only on the console)."""
        self.error_label.setText(str(error))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Remember the window's geometry, then close the session."""
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.timer.stop()
        self.remote.detach()
        if self.session is not None:
            self.session.close()
            self.session = None
        super().closeEvent(event)
