"""Notes at the bench: what the scientist saw, typed while the rig runs, kept
in the recording as timestamped events on the board's clock (``note``), and a
one-key event mark (``mark``) for "now" when typing is too slow."""

from __future__ import annotations

import time

from pyqtgraph.Qt import QtCore, QtWidgets

from rig.gui._widgets import wrapping_label


class NotesPanel(QtWidgets.QWidget):
    """A line to type a note into, and the session's notes and marks so far."""

    def __init__(self, session, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.marks = 0
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.text = QtWidgets.QLineEdit()
        self.text.setPlaceholderText("a note (Ctrl+N), Enter to add")
        self.add_button = QtWidgets.QPushButton("Add note")
        row.addWidget(self.text, 1)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        self.history = QtWidgets.QListWidget()
        self.history.setWordWrap(True)
        layout.addWidget(self.history, 1)
        self.status = wrapping_label("")
        layout.addWidget(self.status)
        self.add_button.clicked.connect(self.add_note)
        self.text.returnPressed.connect(self.add_note)

    def add_note(self) -> None:
        """Record the typed note as a ``note`` event, now (``Session.note``).

        A note the session refuses (no recording, over 2000 characters) stays
        in the line, and the reason is shown: nothing typed is lost."""
        text = self.text.text().strip()
        if not text:
            return
        try:
            self.session.note(text)
        except (ValueError, RuntimeError) as exc:  # MetadataError is a ValueError
            self.status.setText(str(exc))
            return
        self._show(f"note: {text}")
        self.text.clear()

    def mark(self) -> None:
        """Record an event mark, now (the M key)."""
        self.marks += 1
        self.session.record_event("mark", index=self.marks)
        self._show(f"mark {self.marks}")

    def _show(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.history.insertItem(0, f"{stamp}  {line}")
        recording = self.session.recorder.writer is not None
        self.status.setText(
            "" if recording else "not recording: notes are kept only in a recording"
        )

    def focus(self) -> None:
        """Put the cursor in the note line (Ctrl+N)."""
        self.text.setFocus(QtCore.Qt.ShortcutFocusReason)
