"""Who is recorded, by whom and why: the subject and session form.

What the archive (DANDI, NWB) asks about the worm and the session is captured
when the data are made (docs/recording-format.md, "Subject and session"). The
form starts from what the session holds (the rig file's ``[subject]`` and
``[session]``), is checked by the same rules as the rig file and ``neurorig
run``'s options (``rig.recording.subject``: its labels and help come from
``SUBJECT_FIELDS`` and ``SESSION_FIELDS``), and is applied to the session
before each recording starts, so the metadata holds what the form shows. A bad
value is refused with one line naming the form's field, and no recording starts.
"""

from __future__ import annotations

from pyqtgraph.Qt import QtWidgets

from rig.gui._widgets import wrapping_label
from rig.recording.subject import (
    SESSION_FIELDS,
    SUBJECT_FIELDS,
    MetadataError,
    session_from_user,
    subject_from_user,
)

# The form's fields in a person's units (weight in g, length in mm), as the
# command line takes them; label -> (key for subject_from_user, SI field).
SUBJECT_FORM = (
    ("subject ID", "subject_id", "subject_id"),
    ("species", "species", "species"),
    ("sex", "sex", "sex"),
    ("description", "description", "description"),
    ("age", "age", "age"),
    ("date of birth", "date_of_birth", "date_of_birth"),
    ("weight (g)", "weight_g", "weight_kg"),
    ("length (mm)", "length_mm", "length_m"),
)
SESSION_FORM = (
    ("experimenter", "experimenter"),
    ("lab", "lab"),
    ("institution", "institution"),
    ("session description", "description"),
    ("session notes", "notes"),
)
SEXES = ("", "M", "F", "U", "O")
PEOPLE_SEPARATOR = ";"  # 'Last, First' holds a comma: people are split on ';'


def _number_or_text(text: object) -> object:
    """A number typed as text, as a number; anything else as typed (the rules
    refuse it, naming the field)."""
    if not isinstance(text, str):
        return text
    try:
        return float(text)
    except ValueError:
        return text


class SubjectPanel(QtWidgets.QWidget):
    """The subject and session form over a session."""

    def __init__(self, session, *, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QtWidgets.QFormLayout(self)
        self.fields: dict[str, QtWidgets.QWidget] = {}
        for label, key, field in SUBJECT_FORM:
            widget: QtWidgets.QWidget
            if key == "sex":
                widget = QtWidgets.QComboBox()
                widget.addItems(SEXES)
            else:
                widget = QtWidgets.QLineEdit()
            widget.setToolTip(SUBJECT_FIELDS[field])
            self.fields[label] = widget
            layout.addRow(label, widget)
        for label, field in SESSION_FORM:
            edit = QtWidgets.QLineEdit()
            tip = SESSION_FIELDS[field]
            if field == "experimenter":
                tip += f"; several separated by '{PEOPLE_SEPARATOR}'"
            edit.setToolTip(tip)
            self.fields[label] = edit
            layout.addRow(label, edit)
        self.apply_button = QtWidgets.QPushButton("Apply")
        layout.addRow(self.apply_button)
        self.status = wrapping_label("")
        layout.addRow(self.status)
        self.apply_button.clicked.connect(self.apply)
        self.show_session()

    def show_session(self) -> None:
        """Fill the form from what the session holds."""
        subject = self.session.subject.to_dict()
        for label, key, field in SUBJECT_FORM:
            value = subject.get(field)
            if value is not None and key in ("weight_g", "length_mm"):
                value = f"{value * 1000:g}"  # kg -> g, m -> mm
            self._set(label, "" if value is None else str(value))
        info = self.session.session_info.to_dict()
        for label, field in SESSION_FORM:
            value = info.get(field)
            if field == "experimenter":
                value = f"{PEOPLE_SEPARATOR} ".join(value or [])
            self._set(label, "" if value is None else str(value))

    def apply(self) -> str | None:
        """Check the form and set the session's subject and session info; the
        refusal (one line naming the field) or None."""
        subject_values: dict[str, object] = {
            key: self._text(label) for label, key, _ in SUBJECT_FORM
        }
        for key in ("weight_g", "length_mm"):  # a number, as the options take it
            subject_values[key] = _number_or_text(subject_values[key])
        session_values: dict[str, object] = {
            field: self._text(label) for label, field in SESSION_FORM
        }
        people = self._text("experimenter")
        session_values["experimenter"] = (
            [p.strip() for p in people.split(PEOPLE_SEPARATOR) if p.strip()]
            if people
            else None
        )
        subject_label = {key: label for label, key, _ in SUBJECT_FORM}
        session_label = {field: label for label, field in SESSION_FORM}
        try:
            subject = subject_from_user(
                subject_values, lambda key: subject_label.get(key, key)
            )
            info = session_from_user(
                session_values, lambda key: session_label.get(key, key)
            )
        except MetadataError as exc:
            self.status.setStyleSheet("color: #e66;")
            self.status.setText(str(exc))
            return str(exc)
        self.session.subject, self.session.session_info = subject, info
        self.status.setStyleSheet("")
        self.status.setText("applied: written into each new recording's metadata")
        return None

    def _text(self, label: str) -> str | None:
        widget = self.fields[label]
        if isinstance(widget, QtWidgets.QComboBox):
            text = widget.currentText()
        else:
            text = widget.text()
        return text.strip() or None

    def _set(self, label: str, text: str) -> None:
        widget = self.fields[label]
        if isinstance(widget, QtWidgets.QComboBox):
            widget.setCurrentIndex(max(0, widget.findText(text)))
        else:
            widget.setText(text)
