"""Protocol panel: open a protocol file, see its plan, run / pause / stop it."""

from __future__ import annotations

import logging
import time

from pyqtgraph.Qt import QtWidgets

from rig.core.runner import RunState
from rig.gui._widgets import ElidedLabel, wrapping_label

log = logging.getLogger(__name__)


class ProtocolPanel(QtWidgets.QWidget):
    """Loads a protocol through rig.protocols and runs it through the session."""

    def __init__(
        self, session, bridge, settings=None, *, closed_loop_panel=None, parent=None
    ) -> None:
        super().__init__(parent)  # the dock shows the title
        self.session = session
        self.settings = settings
        self.plan = None
        self.protocol = None
        self.path: str | None = None
        self.closed_loop_panel = closed_loop_panel  # shows and controls a search
        self.loop = None  # the running ClosedLoop
        self._started = None
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.open_button = QtWidgets.QPushButton("Open…")
        self.file_label = ElidedLabel("no protocol")  # a path: the tooltip has it all
        row.addWidget(self.open_button)
        row.addWidget(self.file_label, 1)
        layout.addLayout(row)
        self.summary = wrapping_label()
        layout.addWidget(self.summary)
        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.stop_button = QtWidgets.QPushButton("Stop")
        # A run a fault, an unplug or a crash stopped: its remaining trials,
        # into the recording in progress, linked to the first (rig.core.resume).
        self.resume_button = QtWidgets.QPushButton("Resume…")
        self.resume_button.setToolTip(
            "run the trials a stopped recording of this protocol did not deliver, "
            "into the recording in progress (metadata resumed_from)"
        )
        row.addWidget(self.resume_button)  # beside the file: it picks one too
        for b in (self.run_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.progress = QtWidgets.QProgressBar()
        self.remaining = wrapping_label("")
        layout.addWidget(self.progress)
        layout.addWidget(self.remaining)
        layout.addStretch(1)  # the controls stay together at the top
        self.open_button.clicked.connect(self.choose_file)
        self.run_button.clicked.connect(lambda: self.run())  # not clicked(bool)
        self.resume_button.clicked.connect(self.choose_resume)
        self.pause_button.toggled.connect(self.session.runner.set_paused)
        self.stop_button.clicked.connect(self.session.runner.cancel)
        bridge.run_state_changed.connect(self._on_status)
        self._update_buttons(self.session.runner.status)

    def choose_file(self) -> None:
        """Ask for a protocol file and load it."""
        folder = self.settings.value("protocol_folder", "") if self.settings else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open protocol", folder, "Protocol files (*.toml)"
        )
        if path:
            self.load(path)

    def load(self, path: str) -> bool:
        """Load and validate ``path``; show the plan or the error."""
        from rig.protocols import ProtocolError, load_protocol
        from rig.safety import check_protocol

        try:
            protocol = load_protocol(path)
            plan = check_protocol(  # None: closed loop
                protocol,
                self.session.limits,
                n_electrodes=self.session.stimulator.n_electrodes,
            )
        except (ProtocolError, ValueError, OSError) as exc:
            self.plan = None
            self.protocol = None
            self.summary.setText(f"<span style='color:#e66'>{exc}</span>")
            self._update_buttons(self.session.runner.status)
            return False
        self.plan = plan
        self.protocol = protocol
        self.path = path
        self.file_label.setText(path)
        if self.settings is not None:
            import os

            self.settings.setValue("protocol_folder", os.path.dirname(path))
        if plan is None:
            spec = protocol.closed_loop
            self.summary.setText(
                f"{protocol.name}: closed loop ({spec.strategy}), up to "
                f"{spec.n_stimuli} stimuli, {spec.max_duration_s / 60:.1f} min"
            )
            n_trials = spec.n_stimuli
        else:
            self.summary.setText(
                f"{protocol.name}: {plan.n_trials} stimuli, "
                f"{plan.total_duration_s / 60:.1f} min"
            )
            n_trials = plan.n_trials
        self.progress.setMaximum(n_trials)
        self.progress.setValue(0)
        self._update_buttons(self.session.runner.status)
        return True

    def choose_resume(self) -> None:
        """Pick the stopped recording to resume from."""
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "The recording that stopped early"
        )
        if folder:
            self.run(resume_from=folder)

    def run(self, resume_from: str | None = None) -> None:
        """Start the loaded plan (or closed loop); nothing while one runs.

        ``resume_from``: a recording of this protocol that stopped early: only
        the trials it did not deliver, into the recording in progress (one is
        needed: the resumed part must be kept, linked to the first)."""
        if self.protocol is None or not self.run_button.isEnabled():
            return
        if resume_from is not None and self.session.recorder.writer is None:
            self.summary.setText(
                "<span style='color:#e66'>resume: start a recording first (the "
                "resumed trials go into it, linked to the first)</span>"
            )
            return
        from rig.core.experiment import Experiment

        self._started = time.monotonic()
        panel = self.closed_loop_panel
        log.info("protocol %s: started", getattr(self.protocol, "name", "?"))
        try:
            # Recorded by the recording panel, if it records: no folder of its own.
            experiment = Experiment(
                self.session,
                self.protocol,
                out_root=None,
                protocol_path=self.path,
                lead_in_s=0.0,
                tail_s=0.0,
                require_approval=bool(panel and panel.approval.isChecked()),
                resume_from=resume_from,
            )
            self.loop = experiment.loop
            if panel is not None and self.loop is not None:
                panel.attach(self.loop)
            if experiment.resumption is not None:
                first = experiment.resumption.first_trial
                self.summary.setText(
                    f"resuming {self.protocol.name} at trial {first + 1} of "
                    f"{first + experiment.n_trials}"
                )
                self.progress.setMaximum(experiment.n_trials)
            experiment.start()
        except (RuntimeError, ValueError) as exc:  # ResumeError is a ValueError
            self.summary.setText(f"<span style='color:#e66'>{exc}</span>")

    def _on_status(self, status) -> None:
        self.progress.setValue(status.trial)
        if status.finish_reason is not None and self.loop is not None:
            self.loop = None  # the experiment disconnects it
            if self.closed_loop_panel is not None:
                self.closed_loop_panel.detach()
        if status.finish_reason is not None:
            reason = status.finish_reason.value.replace("_", " ")
            detail = f": {status.message}" if status.message else ""
            text = f"{reason} after {status.trial} of {status.n_trials} stimuli{detail}"
            self.remaining.setText(text)
            log.info("protocol %s: %s", getattr(self.protocol, "name", "?"), text)
        elif self.plan is not None and self._started and status.trial:
            elapsed = time.monotonic() - self._started
            left = elapsed / status.trial * (self.plan.n_trials - status.trial)
            self.remaining.setText(f"{status.phase.value} · {left:.0f} s remaining")
        else:
            self.remaining.setText(status.phase.value)
        self._update_buttons(status)

    def _update_buttons(self, status) -> None:
        running = status.phase in (RunState.RUNNING, RunState.PAUSED)
        self.run_button.setEnabled(self.protocol is not None and not running)
        self.resume_button.setEnabled(
            self.protocol is not None and not running and self.loop is None
        )
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
