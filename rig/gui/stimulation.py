"""Stimulation panel: pulse fields checked against safety limits; arm, fire, E-stop."""

from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from firmware_bridge.stimulus import Polarity, StimPulse, parse_configuration
from rig.gui._widgets import wrapping_label
from rig.gui._worker import run_in_background
from rig.gui.electrode_map import ElectrodeMap


class StimulationPanel(QtWidgets.QWidget):
    """Amplitude, duration, configuration, polarity, train; arm/disarm; single
    pulse; E-stop.

    The configuration picker lists what the rig allows on the board's
    electrodes ("C0-A1": cathode 0, anode 1; "C3-R": cathode 3 against the
    common return); the electrode map above it shows the electrodes and the
    recording pairs along the body with the chosen configuration highlighted
    (clicking an electrode makes it the cathode). A value outside the rig's
    safety limits is refused when the pulse is built, with the limit's own
    message shown under the fields; nothing is sent.
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
        self.configuration = QtWidgets.QComboBox()
        self.configuration.setToolTip(
            "electrode configuration: C<cathode>-A<anode>, or C<cathode>-R "
            "against the common return; the site is the cathode"
        )
        self.electrode_map = self._electrode_map(session)
        self.configuration.addItems(self._configurations(session))
        if self.configuration.findText("C0-A1") >= 0:
            self.configuration.setCurrentText("C0-A1")
        self.electrode_map.set_configuration(self.configuration.currentText())
        self.polarity = QtWidgets.QComboBox()
        self.polarity.addItems(["positive first", "negative first"])
        self.n_pulses = QtWidgets.QSpinBox(minimum=1, maximum=1000, value=1)
        self.rate_hz = QtWidgets.QDoubleSpinBox(
            decimals=1, minimum=0.1, maximum=1000.0, value=1.0, suffix=" Hz"
        )
        self._bound_to_limits(session.limits)
        form.addRow("amplitude", self.amplitude)
        form.addRow("duration", self.duration_ms)
        form.addRow(self.electrode_map)
        form.addRow("configuration", self.configuration)
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
            self.n_pulses,
            self.rate_hz,
        ):
            box.valueChanged.connect(self.validate)
        self.configuration.currentTextChanged.connect(self._configuration_chosen)
        self.electrode_map.configuration_clicked.connect(self.choose_configuration)
        self.validate()

    @staticmethod
    def _n_electrodes(session) -> int:
        """The board's electrodes (its handshake), else the rig file's count."""
        n = getattr(getattr(session, "stimulator", None), "n_electrodes", None)
        positions = getattr(getattr(session, "rig", None), "stim_electrodes_m", None)
        return int(n or (len(positions) if positions else 2))

    def _configurations(self, session) -> list[str]:
        n = self._n_electrodes(session)
        limits = session.limits
        if limits is None:
            from firmware_bridge.stimulus import all_configurations

            return all_configurations(n)
        return limits.configurations(n)

    def _electrode_map(self, session) -> ElectrodeMap:
        rig = getattr(session, "rig", None)
        n = self._n_electrodes(session)
        positions = getattr(rig, "stim_electrodes_m", None)
        pairs = getattr(rig, "pair_centres_m", None)
        if positions is None or len(positions) != n:  # not placed: evenly spaced
            length = 0.15
            positions = [length * (k + 0.5) / n for k in range(n)]
            pairs = None
        return ElectrodeMap(positions, pairs)

    def choose_configuration(self, text: str) -> bool:
        """Pick ``text`` if the rig allows it (True); else say why (False)."""
        index = self.configuration.findText(text)
        if index < 0:
            self.message.setText(
                f"configuration {text} is not one the rig allows "
                "(limits.allowed_configurations)"
            )
            return False
        self.configuration.setCurrentIndex(index)
        return True

    def _configuration_chosen(self, text: str) -> None:
        self.electrode_map.set_configuration(text or None)
        self.validate()

    def _bound_to_limits(self, limits) -> None:
        """The fields cannot hold what the rig's limits refuse (amplitude,
        duration, pulses, rate); what depends on several fields at once
        (charge per phase, on-time) is refused by ``validate``."""
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
        cathode, anode = parse_configuration(self.configuration.currentText())
        return StimPulse(
            amplitude_vpp=self.amplitude.value(),
            duration_s=self.duration_ms.value() / 1000.0,
            cathode=cathode,
            anode=anode,
            polarity=Polarity(self.polarity.currentIndex()),
            n_pulses=self.n_pulses.value(),
            rate_hz=self.rate_hz.value(),
        )

    def validate(self) -> bool:
        """Check the fields against the safety limits; show why when refused."""
        limits = self.session.limits
        try:
            pulse = self.pulse()
            if limits is not None:
                limits.check(pulse, n_electrodes=self._n_electrodes(self.session))
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
