"""MainWindow: docks of thin views over one Session; status bar with link health."""

from __future__ import annotations

import logging

from pyqtgraph.Qt import QtCore, QtWidgets

from rig.gui._bridge import QtBridge
from rig.gui._widgets import ElidedLabel, scrolling
from rig.gui._worker import run_in_background
from rig.gui.camera_view import CameraWidget
from rig.gui.closed_loop_panel import ClosedLoopPanel
from rig.gui.connection import ConnectionPanel
from rig.gui.figures import export_view
from rig.gui.notes_panel import NotesPanel
from rig.gui.param_map import ParameterMapWidget
from rig.gui.protocol_panel import ProtocolPanel
from rig.gui.recording_panel import RecordingPanel
from rig.gui.remote_control import RemoteControl
from rig.gui.stimulation import StimulationPanel
from rig.gui.subject_panel import SubjectPanel
from rig.gui.sweeps import SweepsWidget
from rig.gui.themes import THEMES, apply_theme
from rig.gui.traces import LiveTracesWidget

log = logging.getLogger(__name__)

DISPLAY_HZ = 33  # a little over 30, so timer slack still leaves ≥ 30 redraws/s

# Every keyboard shortcut, for the Help menu's list (and its test).
SHORTCUTS = (
    ("Esc", "emergency stop: disarm now, stop any run (holds until Reset)"),
    ("Ctrl+Shift+R", "reset: release an emergency stop or a fault (stays disarmed)"),
    ("F5", "run the loaded protocol"),
    ("M", "mark this moment in the recording (a 'mark' event)"),
    ("Ctrl+N", "write a note (recorded as a 'note' event)"),
    ("Ctrl+E", "export the plots of the current tab (PNG or SVG)"),
    ("Ctrl+T", "switch between the dark and the light theme"),
    ("F1", "this list"),
    ("Ctrl+Q", "quit (disarms the board first)"),
)


class MainWindow(QtWidgets.QMainWindow):
    """The lab app's window. Owns no rig state: everything lives in the Session."""

    session_opened = QtCore.pyqtSignal(object)

    def __init__(
        self,
        *,
        session_factory,
        settings=None,
        protocol=None,
        remote_bind: str = "127.0.0.1:5555",
        remote: bool = False,
        parent=None,
    ) -> None:
        """``protocol``: a protocol file to load once connected (``--protocol``);
        ``remote``: serve the remote API (rig.remote) on ``remote_bind``."""
        super().__init__(parent)
        self.protocol_to_load = protocol
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
        toolbar = self.addToolBar("Connection")
        toolbar.setObjectName("Connection")
        toolbar.setMovable(False)
        toolbar.addWidget(self.connection)
        placeholder = QtWidgets.QLabel("Connect to a board or the simulated rig.")
        placeholder.setAlignment(QtCore.Qt.AlignCenter)
        self.setCentralWidget(placeholder)
        self.link_label = ElidedLabel("no link", mode=QtCore.Qt.ElideRight)
        self.link_label.setFixedWidth(480)  # elided within it; the tooltip has all
        self.statusBar().addPermanentWidget(self.link_label)
        # One line in the status bar; a long message is elided, whole in the tooltip.
        self.error_label = ElidedLabel(mode=QtCore.Qt.ElideRight)
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
        self._build_menus(remote_bind, remote)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _build_menus(self, remote_bind: str, remote: bool) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        self.export_action = file_menu.addAction("Export figure…")
        self.export_action.setShortcut("Ctrl+E")
        self.export_action.triggered.connect(self.choose_export)
        quit_action = file_menu.addAction("Quit")
        quit_action.setShortcut("Ctrl+Q")
        quit_action.triggered.connect(self.close)
        view_menu = menus.addMenu("&View")
        self.theme_actions = {}
        group = QtWidgets.QActionGroup(self)
        for theme in THEMES:
            action = view_menu.addAction(f"{theme.capitalize()} theme")
            action.setCheckable(True)
            action.triggered.connect(lambda _, t=theme: self.set_theme(t))
            group.addAction(action)
            self.theme_actions[theme] = action
        toggle = view_menu.addAction("Switch theme")
        toggle.setShortcut("Ctrl+T")
        toggle.triggered.connect(
            lambda: self.set_theme("light" if self.theme == "dark" else "dark")
        )
        rig_menu = menus.addMenu("&Rig")
        self.mark_action = rig_menu.addAction("Mark this moment")
        self.mark_action.setShortcut("M")
        self.mark_action.triggered.connect(self.mark)
        self.note_action = rig_menu.addAction("Write a note")
        self.note_action.setShortcut("Ctrl+N")
        self.note_action.triggered.connect(self.focus_note)
        self.run_action = rig_menu.addAction("Run the loaded protocol")
        self.run_action.setShortcut("F5")
        self.run_action.triggered.connect(lambda: self.protocol.run())
        self.reset_action = rig_menu.addAction("Reset (release a stop or a fault)")
        self.reset_action.setShortcut("Ctrl+Shift+R")
        self.reset_action.triggered.connect(lambda: self.stimulation.reset())
        self.session_actions = (
            self.mark_action, self.note_action, self.export_action,
            self.run_action, self.reset_action,
        )  # fmt: skip
        for action in self.session_actions:
            action.setEnabled(False)  # until a session is attached
        # The remote API (rig.remote), served with the session when switched
        # on; its menu before Help, which stays last.
        self.remote = RemoteControl(
            self,
            bind=remote_bind,
            enabled=remote,
            recordings_root=lambda: self.recording.folder.text(),
        )
        help_menu = menus.addMenu("&Help")
        shortcuts = help_menu.addAction("Keyboard shortcuts")
        shortcuts.setShortcut("F1")
        shortcuts.triggered.connect(self.show_shortcuts)
        self.theme = ""
        self.set_theme(str(self.settings.value("theme", "dark")))

    def set_theme(self, theme: str) -> None:
        """Dark or light, remembered in the settings."""
        if theme not in THEMES:
            theme = "dark"
        apply_theme(self, theme)
        self.theme = theme
        self.theme_actions[theme].setChecked(True)
        self.settings.setValue("theme", theme)

    def show_shortcuts(self) -> None:
        """A dialog listing every keyboard shortcut."""
        dialog = QtWidgets.QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        layout = QtWidgets.QFormLayout(dialog)
        for keys, what in SHORTCUTS:
            layout.addRow(f"<b>{keys}</b>", QtWidgets.QLabel(what))
        self.shortcuts_dialog = dialog
        dialog.show()

    def mark(self) -> None:
        """Mark this moment in the recording (M)."""
        if self.session is not None:
            self.notes.mark()

    def focus_note(self) -> None:
        """Show the notes and put the cursor in its line (Ctrl+N)."""
        if self.session is not None:
            self.docks[3].raise_()
            self.notes.focus()

    def choose_export(self) -> None:
        """Ask for a file and export the current tab's plots to it."""
        folder = str(self.settings.value("figure_folder", ""))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export figure", folder, "PNG image (*.png);;SVG drawing (*.svg)"
        )
        if path:
            self.export_current(path)

    def export_current(self, path: str) -> list:
        """Write the current tab's plots to ``path`` (.png or .svg)."""
        try:
            written = export_view(self.centralWidget().currentWidget(), path)
        except (ValueError, OSError) as exc:
            self.show_error(f"cannot export: {exc}")
            return []
        self.settings.setValue("figure_folder", str(written[0].parent))
        self.error_label.setText(f"exported {', '.join(p.name for p in written)}")
        return written

    def _dock(self, title, widget, area, *, scroll=True):
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(scrolling(widget) if scroll else widget)
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
        self.traces = LiveTracesWidget(session, settings=self.settings)
        self.sweeps = SweepsWidget(session, self.bridge)
        self.camera = CameraWidget(session, window_s=self.traces.window_s)
        self.camera.setMinimumWidth(260)  # room for the displacement axis
        self.param_map = ParameterMapWidget(session, self.bridge)
        self.stimulation = StimulationPanel(session, self.bridge)
        self.closed_loop = ClosedLoopPanel(session, self.bridge)
        self.protocol = ProtocolPanel(
            session, self.bridge, self.settings, closed_loop_panel=self.closed_loop
        )
        self.subject = SubjectPanel(session)
        self.recording = RecordingPanel(
            session, self.bridge, self.settings, before_start=self.subject.apply
        )
        self.notes = NotesPanel(session)
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self.traces, "Live traces")
        tabs.addTab(self.sweeps, "Stimulus-locked")
        tabs.addTab(self.param_map, "Parameter map")
        tabs.addTab(self.closed_loop, "Closed loop")
        self.setCentralWidget(tabs)
        left = QtCore.Qt.LeftDockWidgetArea
        self.docks = [
            self._dock("Stimulation", self.stimulation, left),
            self._dock("Protocol", self.protocol, left),
            self._dock("Recording", self.recording, left),
            self._dock("Notes", self.notes, left),
            self._dock("Subject", self.subject, left),
            self._dock(
                "Camera", self.camera, QtCore.Qt.RightDockWidgetArea, scroll=False
            ),
        ]
        # Protocol, Recording, Notes and Subject share a place: the stimulation
        # panel (with its emergency stop) keeps its whole height on a 768-pixel
        # screen.
        self.tabifyDockWidget(self.docks[1], self.docks[2])
        self.tabifyDockWidget(self.docks[2], self.docks[3])
        self.tabifyDockWidget(self.docks[3], self.docks[4])
        self.docks[1].raise_()
        # The stimulation panel takes no more than it needs; the rest goes below.
        self.docks[0].widget().setMaximumHeight(self.stimulation.sizeHint().height())
        state = self.settings.value("window_state")
        if state is not None:
            self.restoreState(state)
        self.views = [self.traces, self.camera]
        self.connection.show_connected(session.device.info)
        log.info("connected: %s", self.connection.identity.full_text())
        self.error_label.setText("; ".join(session.setup_warnings()))
        for action in self.session_actions:
            action.setEnabled(True)
        if self.protocol_to_load:
            self.protocol.load(self.protocol_to_load)
        apply_theme(self, self.theme)  # the new plots too
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
        for action in self.session_actions:
            action.setEnabled(False)
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
