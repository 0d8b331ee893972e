"""Recording panel: start/stop, folder, elapsed time, disk space (warns before full)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pyqtgraph.Qt import QtWidgets

from rig.gui._widgets import ElidedLabel, wrapping_label

# Warn when the disk holds less than this much more recording at the rate of
# what is recorded: the samples and the video at its storage's measured rate
# (rig.recording.VideoStorage: ~550 MB/min lossless at 640×480 60 fps), or,
# while recording, the rate the writer measures.
LOW_DISK_MINUTES = 15.0


class RecordingPanel(QtWidgets.QWidget):
    """Starts and stops the session's recording into a chosen folder."""

    def __init__(
        self, session, bridge, settings=None, *, before_start=None, parent=None
    ) -> None:
        """``before_start``: called before each recording; a string it returns
        (why not: the subject form's refusal) stops the start and is shown."""
        super().__init__(parent)  # the dock shows the title
        self.session = session
        self.before_start = before_start
        self.settings = settings
        self._started: float | None = None
        layout = QtWidgets.QFormLayout(self)
        folder = settings.value("record_folder", "runs") if settings else "runs"
        self.folder = QtWidgets.QLineEdit(str(folder))
        browse = QtWidgets.QPushButton("…")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        layout.addRow("folder", row)
        self.button = QtWidgets.QPushButton("Start recording")
        self.button.setCheckable(True)
        layout.addRow(self.button)
        self.elapsed = wrapping_label("not recording")
        self.disk = wrapping_label("")
        self.disk.setToolTip(
            "free space, and how long a recording fits in it at the rate of "
            "the samples and the video as stored (or as measured while recording)"
        )
        layout.addRow("elapsed", self.elapsed)
        layout.addRow("disk free", self.disk)
        self.path_label = ElidedLabel()  # a path: the tooltip has it all
        layout.addRow(self.path_label)
        self.message = wrapping_label(style="color: #e66;")
        layout.addRow(self.message)
        browse.clicked.connect(self._browse)
        self.button.toggled.connect(self._toggled)
        bridge.recording_changed.connect(self._on_recording_changed)

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Recordings folder")
        if path:
            self.folder.setText(path)

    def _toggled(self, checked: bool) -> None:
        if checked:
            self.start()
        else:
            self.session.stop_recording()

    def start(self) -> None:
        """Create a new recording folder and start recording into it."""
        from rig.core.experiment import new_recording

        refused = self.before_start() if self.before_start is not None else None
        if refused:
            self.message.setText(f"not started: {refused}")
            self.button.setChecked(False)
            return
        base = Path(self.folder.text())
        try:
            writer = new_recording(self.session, base)
        except OSError as exc:
            self.message.setText(str(exc))
            self.button.setChecked(False)
            return
        if self.settings is not None:
            self.settings.setValue("record_folder", str(base))
        self.message.setText("")
        self.session.start_recording(writer)

    def _on_recording_changed(self, path) -> None:
        recording = bool(path)
        self._started = time.monotonic() if recording else None
        self.button.blockSignals(True)
        self.button.setChecked(recording)
        self.button.setText("Stop recording" if recording else "Start recording")
        self.button.blockSignals(False)
        self.path_label.setText(str(path) if recording else "")

    def refresh(self) -> None:
        """Update elapsed time and free disk space (called ~1 Hz)."""
        if self._started is not None:
            self.elapsed.setText(f"{time.monotonic() - self._started:.0f} s")
        else:
            self.elapsed.setText("not recording")
        base = Path(self.folder.text())
        probe = base if base.exists() else Path.cwd()
        free = shutil.disk_usage(probe).free
        minutes = free / max(recording_rate_bytes_per_s(self.session), 1.0) / 60.0
        text = f"{free / 1024**3:.1f} GiB, {_duration(minutes)}"  # of recording
        if minutes < LOW_DISK_MINUTES:
            text = f"<span style='color:#e66'>{text}: disk nearly full</span>"
        self.disk.setText(text)


def recording_rate_bytes_per_s(session) -> float:
    """Bytes per second a recording of ``session`` writes: the writer's
    measured rate while recording, else the samples' plus the video's at the
    rig's storage choice and the camera's image size (the latest frame's)."""
    writer = session.recorder.writer
    if writer is not None:
        return float(writer.data_rate_bytes_per_s)
    rate = 2.0 * session.n_channels * session.sample_rate_hz
    intake = getattr(session, "camera_intake", None)
    latest = intake.latest_frame if intake is not None else None
    if latest is not None:
        height, width = latest[0].shape[:2]
        rate += session.rig.video.bytes_per_s(height, width, intake.rate_hz)
    return rate


def _duration(minutes: float) -> str:
    if minutes >= 120:
        return f"{minutes / 60:.0f} h"
    return f"{minutes:.0f} min"
