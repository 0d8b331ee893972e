"""QtBridge: re-emits the session's plain-Python events as Qt signals.

Core events fire on acquisition, runner or reader threads. A pyqtSignal emitted
from another thread reaches slots of objects living in the GUI thread through a
queued connection, so every GUI slot runs on the GUI thread.
"""

from __future__ import annotations

from pyqtgraph.Qt import QtCore


class QtBridge(QtCore.QObject):
    """One Qt signal per RigEvents signal, same arguments."""

    # Sample numbers as object: a C int overflows after ~20 h at 30 kHz.
    stim_delivered = QtCore.pyqtSignal(object, dict)
    run_state_changed = QtCore.pyqtSignal(object)
    response_measured = QtCore.pyqtSignal(int, dict)
    motion_measured = QtCore.pyqtSignal(int, dict)
    fault_raised = QtCore.pyqtSignal(str)
    error_occurred = QtCore.pyqtSignal(object)
    recording_changed = QtCore.pyqtSignal(object)
    armed_changed = QtCore.pyqtSignal(bool)
    optimiser_updated = QtCore.pyqtSignal(dict)
    trial_delivered = QtCore.pyqtSignal(object, object)
    note_added = QtCore.pyqtSignal(object, str)

    def __init__(self, events, parent=None) -> None:
        super().__init__(parent)
        self._events = events
        self._links = []
        for signal in events.all():
            qt_signal = getattr(self, signal.name)
            callback = qt_signal.emit
            signal.connect(callback)
            self._links.append((signal, callback))

    def detach(self) -> None:
        """Disconnect from the core events (when the session closes)."""
        for signal, callback in self._links:
            signal.disconnect(callback)
        self._links = []
