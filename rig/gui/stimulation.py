"""Stimulation panel: pulse fields checked against safety limits; arm, fire, E-stop."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from firmware_bridge.stimulus import Polarity, StimPulse
from rig.gui._widgets import wrapping_label
from rig.gui._worker import run_in_background


class StimulationPanel(QtWidgets.QWidget):
    """Amplitude, duration, pair, polarity, train; arm/disarm; single pulse; E-stop.

    A value outside the rig's safety limits is refused when the pulse is built,
    with the limit's own message shown under the fields; nothing is sent.
    """

    def __init__(self, session, bridge, *, parent=None) -> None:
        super().__init__(parent)  # the dock shows the title
        self.session = session
        form = QtWidgets.QFormLayout(self)
        self.amplitude = QtWidgets.QDoubleSpinBox(
            decimals=2, minimum=0.0, maximum=20.0, value=4.0, singleStep=0.25,
            suffix=" Vpp",
        )  # fmt: skip
        self.duration_ms = QtWidgets.QDoubleSpinBox(
            decimals=2, minimum=0.0, maximum=50.0, value=3.0, singleStep=0.5,
            suffix=" ms",
        )  # fmt: skip
        self.pair = QtWidgets.QSpinBox(minimum=0, maximum=31, value=0)
        self.polarity = QtWidgets.QComboBox()
        self.polarity.addItems(["positive first", "negative first"])
        self.n_pulses = QtWidgets.QSpinBox(minimum=1, maximum=1000, value=1)
        self.rate_hz = QtWidgets.QDoubleSpinBox(
            decimals=1, minimum=0.1, maximum=1000.0, value=1.0, suffix=" Hz"
        )
        self._bound_to_limits(session.limits)
        form.addRow("amplitude", self.amplitude)
        form.addRow("duration", self.duration_ms)
        form.addRow("pair", self.pair)
        form.addRow("polarity", self.polarity)
        form.addRow("pulses", self.n_pulses)
        form.addRow("train rate", self.rate_hz)
        self.message = wrapping_label(style="color: #e66;")
        form.addRow(self.message)
        buttons = QtWidgets.QHBoxLayout()
        self.arm_button = QtWidgets.QPushButton("Arm")
        self.arm_button.setCheckable(True)
        self.fire_button = QtWidgets.QPushButton("Single pulse")
        # Releases a held emergency stop or a latched board fault (the board
        # stays disarmed: arming is a separate, deliberate step).
        self.reset_button = QtWidgets.QPushButton("Reset")
        self.reset_button.setEnabled(False)
        self.estop_button = QtWidgets.QPushButton("EMERGENCY STOP (Esc)")
        self.estop_button.setStyleSheet(
            "background: #b00; color: white; font-weight: bold; padding: 6px;"
        )
        buttons.addWidget(self.arm_button)
        buttons.addWidget(self.fire_button)
        buttons.addWidget(self.reset_button)
        form.addRow(buttons)
        form.addRow(self.estop_button)
        self.arm_button.toggled.connect(self._on_arm_toggled)
        self.fire_button.clicked.connect(self.fire)
        self.estop_button.clicked.connect(self.emergency_stop)
        self.reset_button.clicked.connect(self.reset)
        bridge.armed_changed.connect(self._show_armed)
        self.shortcut = QtWidgets.QShortcut(QtGui.QKeySequence("Esc"), self)
        self.shortcut.setContext(QtCore.Qt.ApplicationShortcut)
        self.shortcut.activated.connect(self.emergency_stop)
        for box in (
            self.amplitude,
            self.duration_ms,
            self.pair,
            self.n_pulses,
            self.rate_hz,
        ):
            box.valueChanged.connect(self.validate)
        self.validate()

    def _bound_to_limits(self, limits) -> None:
        """The fields cannot hold what the rig's limits refuse (amplitude,
        duration, pulses, rate); what depends on several fields at once
        (charge per phase, allowed pairs, on-time) is refused by ``validate``."""
        if limits is None:
            return
        self.amplitude.setRange(limits.min_amplitude_vpp, limits.max_amplitude_vpp)
        self.duration_ms.setRange(
            limits.min_duration_s * 1e3, limits.max_duration_s * 1e3
        )
        self.n_pulses.setMaximum(limits.max_n_pulses)
        self.rate_hz.setMaximum(limits.max_train_rate_hz)

    def pulse(self) -> StimPulse:
        """The pulse the fields describe (not yet checked)."""
        return StimPulse(
            amplitude_vpp=self.amplitude.value(),
            duration_s=self.duration_ms.value() / 1000.0,
            pair=self.pair.value(),
            polarity=Polarity(self.polarity.currentIndex()),
            n_pulses=self.n_pulses.value(),
            rate_hz=self.rate_hz.value(),
        )

    def validate(self) -> bool:
        """Check the fields against the safety limits; show why when refused."""
        limits = self.session.limits
        try:
            if limits is not None:
                limits.check(self.pulse())
        except ValueError as exc:
            self.message.setText(str(exc))
            self.fire_button.setEnabled(False)
            return False
        self.message.setText("")
        self.fire_button.setEnabled(True)
        return True

    def fire(self) -> None:
        """Deliver one pulse (or train) on a worker thread."""
        if not self.validate():
            return
        pulse = self.pulse()
        run_in_background(
            lambda: self.session.stimulate(pulse), on_error=self._show_error
        )

    def emergency_stop(self) -> None:
        """Disarm now. Runs on the GUI thread on purpose: it must not queue."""
        try:
            self.session.emergency_stop()
        except Exception as exc:
            self._show_error(exc)
        self.message.setText("EMERGENCY STOP: board disarmed; Reset to go on")
        self.reset_button.setEnabled(True)

    def reset(self) -> None:
        """Release the emergency stop (and a board fault); stays disarmed."""

        def done(_: object = None) -> None:
            self.reset_button.setEnabled(False)
            self.message.setText("")

        run_in_background(
            self.session.reset_fault, on_done=done, on_error=self._show_error
        )

    def _on_arm_toggled(self, checked: bool) -> None:
        action = self.session.arm if checked else self.session.disarm

        def failed(exc: BaseException) -> None:
            self._show_error(exc)
            self._show_armed(not checked)  # the board did not change state

        run_in_background(action, on_error=failed)

    def _show_armed(self, armed: bool) -> None:
        with QtCore.QSignalBlocker(self.arm_button):
            self.arm_button.setChecked(armed)
            self.arm_button.setText("Disarm" if armed else "Arm")

    def _show_error(self, exc: BaseException) -> None:
        self.message.setText(str(exc))
