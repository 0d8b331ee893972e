"""Who was recorded, by whom and why: the subject and the session's description.

Captured when the data are made (docs/recording-format.md, "subject and
session"): defaults from the rig file's ``[subject]`` and ``[session]`` tables,
replaced by ``neurorig run`` options or set on a ``Session`` in a script, and
written into every recording's ``metadata.json``. The names follow NWB's
``Subject`` and ``NWBFile`` fields, so an export (``neurorig export --nwb``)
copies them as they are; the rules are those the DANDI archive enforces
(subject ID, sex, species as a Latin binomial, age as an ISO 8601 duration).

Every value is checked here, and a bad one is refused with one line naming the
field as the user wrote it (``--species``, ``rig.toml: subject.species``,
``subject.species``) and what is allowed.

>>> Subject(subject_id="worm-07", species="Lumbricus terrestris", sex="O",
...         description="hermaphrodite", age="P60D/P120D").to_dict()["species"]
'Lumbricus terrestris'
>>> Subject(sex="hermaphrodite")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
rig.recording.subject.MetadataError: subject.sex = 'hermaphrodite': allowed M, F, ...
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class MetadataError(ValueError):
    """A subject or session value that is out of its allowed form or range."""


# Field -> what it is and what is allowed: the CLI's help, the rig file's
# documentation and a form's labels (the GUI's subject form) read this one table.
SUBJECT_FIELDS: dict[str, str] = {
    "subject_id": "the worm's ID, e.g. worm-07: 1–64 letters, digits, '-', '_' or "
    "'.' (it names files: no spaces or slashes)",
    "species": "Latin binomial, e.g. 'Lumbricus terrestris', 'Eisenia fetida'",
    "sex": "M, F, U (unknown) or O (other: say what in the description, e.g. "
    "'hermaphrodite')",
    "description": "the worm: where it came from, its state (clitellate adult, …)",
    "age": "ISO 8601 duration, e.g. P90D (90 days) or a range P60D/P120D, P1Y/",
    "date_of_birth": "ISO date, e.g. 2026-03-01 (instead of or beside the age)",
    "weight_kg": "body weight, kg (0.000001–10)",
    "length_m": "body length at rest, m (0.001–5)",
}
SESSION_FIELDS: dict[str, str] = {
    "experimenter": "who ran it, 'Last, First'",
    "lab": "the lab",
    "institution": "the institution",
    "description": "what this session is for (one paragraph)",
    "notes": "free notes about the session",
}

SEXES = ("M", "F", "U", "O")
SPECIES_RE = re.compile(
    r"[A-Z][a-z]+ [a-z]+|http://purl\.obolibrary\.org/obo/NCBITaxon_\d+"
)
SUBJECT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# ISO 8601 duration (years … seconds, decimals allowed), at least one part: the
# form NWB and the DANDI archive accept for an age.
_NUM = r"\d+(?:\.\d+)?"
DURATION_RE = re.compile(
    rf"P(?!$)(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?",
    re.ASCII,  # digits 0–9 only, as every ISO 8601 reader expects
)
_DAYS = {"Y": 365.25, "M": 30.44, "W": 7.0, "D": 1.0}
MAX_NAME = 200  # a name, a lab, an institution
MAX_DESCRIPTION = 2000
MAX_NOTES = 20_000
WEIGHT_KG = (1e-6, 10.0)  # a 1 mg juvenile to the largest giant earthworms
LENGTH_M = (1e-3, 5.0)

Namer = Callable[[str], str]


def _subject_name(key: str) -> str:
    return f"subject.{key}"


def _session_name(key: str) -> str:
    return f"session.{key}"


def _refuse(shown: str, value: Any, allowed: str) -> MetadataError:
    return MetadataError(f"{shown} = {value!r}: allowed {allowed}")


def check_text(value: Any, shown: str, *, limit: int, multiline: bool = False) -> str:
    """``value`` as clean text: a non-empty string of at most ``limit``
    characters, without control characters (newlines and tabs only where
    ``multiline``)."""
    lines = "text (line breaks allowed)" if multiline else "one line of text"
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _refuse(shown, value, f"{lines}, 1–{limit} characters")
    allowed_controls = "\n\t" if multiline else ""
    if any((ord(c) < 32 and c not in allowed_controls) or c == "\x7f" for c in value):
        raise _refuse(shown, value, f"{lines} without control characters")
    return value.strip()


def _number(value: Any, shown: str, low: float, high: float, unit: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise _refuse(shown, value, f"a number {low:g}–{high:g} {unit}")
    return float(value)


def _age_days(text: str) -> float:
    """Rough length of an ISO 8601 duration in days (to order a range)."""
    date, _, time = text[1:].partition("T")
    days = sum(float(n) * _DAYS[u] for n, u in re.findall(rf"({_NUM})([YMWD])", date))
    seconds = {"H": 3600.0, "M": 60.0, "S": 1.0}
    days += (
        sum(float(n) * seconds[u] for n, u in re.findall(rf"({_NUM})([HMS])", time))
        / 86400
    )
    return days


def check_age(value: Any, shown: str) -> str:
    """An ISO 8601 duration (``P90D``) or a range ``LOW/HIGH`` (either side may
    be empty, not both; LOW shorter than HIGH)."""
    allowed = (
        "an ISO 8601 duration, e.g. 'P90D' (90 days), 'P6M', 'P1Y2M', or a range "
        "'P60D/P120D' ('P1Y/': at least a year)"
    )
    if not isinstance(value, str):
        raise _refuse(shown, value, allowed)
    parts = value.split("/")
    if (
        not value
        or len(parts) > 2
        or not all(DURATION_RE.fullmatch(p) for p in parts if p)
    ):
        raise _refuse(shown, value, allowed)
    if len(parts) == 2:
        low, high = parts
        if not (low or high):
            raise _refuse(shown, value, allowed)
        if low and high and _age_days(low) >= _age_days(high):
            raise _refuse(shown, value, "a range whose lower bound is the shorter")
    return value


def check_date_of_birth(value: Any, shown: str) -> str:
    """An ISO date (``2026-03-01``), not in the future."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        value = value.isoformat()
    try:
        date = dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        date = None
    if date is None or len(value) != 10:
        raise _refuse(shown, value, "an ISO date, YYYY-MM-DD (e.g. 2026-03-01)")
    if date > dt.date.today():
        raise _refuse(shown, value, "a date of birth not in the future")
    return date.isoformat()


@dataclass(frozen=True)
class Subject:
    """The worm recorded (NWB ``Subject``), SI units; every field optional.

    ``sex`` "O" (other) needs a ``description`` saying what, e.g.
    "hermaphrodite" (earthworms are). ``age`` is an ISO 8601 duration or a
    range (``P60D/P120D``); ``date_of_birth`` an ISO date. Values are checked
    on construction (``MetadataError`` names the field)."""

    subject_id: str | None = None
    species: str | None = None
    sex: str | None = None
    description: str | None = None
    age: str | None = None
    date_of_birth: str | None = None
    weight_kg: float | None = None
    length_m: float | None = None

    def __post_init__(self) -> None:
        checked = check_subject(dataclasses.asdict(self), _subject_name)
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    def updated(self, **changes: Any) -> Subject:
        """A copy with ``changes`` (None leaves a field as it is)."""
        return dataclasses.replace(
            self, **{k: v for k, v in changes.items() if v is not None}
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every key present (null when not given)."""
        return dataclasses.asdict(self)

    @property
    def is_empty(self) -> bool:
        """Nothing is known of the subject."""
        return all(v is None for v in dataclasses.asdict(self).values())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Subject:
        """From ``metadata.json``'s ``subject`` (unknown keys refused)."""
        return cls(**_known(data or {}, cls, "subject"))


@dataclass(frozen=True)
class SessionInfo:
    """Who ran the session and why (NWB ``experimenter``, ``lab``,
    ``institution``, ``session_description``, ``notes``). Timestamped notes
    during a run are events (``Session.note``), not this."""

    experimenter: tuple[str, ...] = ()
    lab: str | None = None
    institution: str | None = None
    description: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        checked = check_session(dataclasses.asdict(self), _session_name)
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    def updated(self, **changes: Any) -> SessionInfo:
        """A copy with ``changes`` (None or an empty experimenter
        list leaves a field as it is)."""
        return dataclasses.replace(
            self, **{k: v for k, v in changes.items() if v is not None and v != ()}
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every key present."""
        out = dataclasses.asdict(self)
        out["experimenter"] = list(self.experimenter)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SessionInfo:
        """From ``metadata.json``'s ``session`` (unknown keys refused)."""
        return cls(**_known(data or {}, cls, "session"))


def _known(data: Mapping[str, Any], cls: type, table: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise MetadataError(f"{table} = {data!r:.60}: allowed a JSON object")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise MetadataError(
                f"{table}.{key} is not a {table} field (allowed: {', '.join(names)})"
            )
    return dict(data)


def check_subject(values: Mapping[str, Any], name: Namer = _subject_name) -> dict:
    """The subject's fields checked (None: not given), named by ``name(key)``."""
    out: dict[str, Any] = dict(values)
    if out.get("subject_id") is not None:
        text = out["subject_id"]
        if not isinstance(text, str) or not SUBJECT_ID_RE.fullmatch(text):
            raise _refuse(name("subject_id"), text, SUBJECT_FIELDS["subject_id"])
    if out.get("species") is not None:
        text = out["species"]
        if not isinstance(text, str) or not SPECIES_RE.fullmatch(text):
            raise _refuse(
                name("species"),
                text,
                "a Latin binomial, 'Genus species' (e.g. 'Lumbricus terrestris', "
                "'Eisenia fetida'), or an NCBI taxonomy IRI "
                "(http://purl.obolibrary.org/obo/NCBITaxon_<number>)",
            )
    if out.get("sex") is not None and out["sex"] not in SEXES:
        raise _refuse(name("sex"), out["sex"], SUBJECT_FIELDS["sex"])
    if out.get("description") is not None:
        out["description"] = check_text(
            out["description"], name("description"), limit=MAX_DESCRIPTION
        )
    if out.get("sex") == "O" and out.get("description") is None:
        raise MetadataError(
            f"{name('sex')} = 'O' (other) needs {name('description')} saying what "
            "(e.g. 'hermaphrodite')"
        )
    if out.get("age") is not None:
        out["age"] = check_age(out["age"], name("age"))
    if out.get("date_of_birth") is not None:
        out["date_of_birth"] = check_date_of_birth(
            out["date_of_birth"], name("date_of_birth")
        )
    if out.get("weight_kg") is not None:
        out["weight_kg"] = _number(
            out["weight_kg"], name("weight_kg"), *WEIGHT_KG, "kg"
        )
    if out.get("length_m") is not None:
        out["length_m"] = _number(out["length_m"], name("length_m"), *LENGTH_M, "m")
    return out


def check_session(values: Mapping[str, Any], name: Namer = _session_name) -> dict:
    """The session description's fields checked, named by ``name(key)``."""
    out: dict[str, Any] = dict(values)
    people = out.get("experimenter") or ()
    if isinstance(people, str):
        people = (people,)
    if not isinstance(people, list | tuple) or len(people) > 50:
        raise _refuse(name("experimenter"), people, "a list of 1–50 names")
    out["experimenter"] = tuple(
        check_text(p, name("experimenter"), limit=MAX_NAME) for p in people
    )
    for key in ("lab", "institution"):
        if out.get(key) is not None:
            out[key] = check_text(out[key], name(key), limit=MAX_NAME)
    if out.get("description") is not None:
        out["description"] = check_text(
            out["description"], name("description"), limit=MAX_DESCRIPTION,
            multiline=True,
        )  # fmt: skip
    if out.get("notes") is not None:
        out["notes"] = check_text(
            out["notes"], name("notes"), limit=MAX_NOTES, multiline=True
        )
    return out


# Fields a person types with a unit other than SI (the rig file and the
# command line, like ``pair_centres_mm``): name there -> (field, units per SI
# unit; dividing gives SI, exactly where the typed value is exact).
USER_UNITS = {"weight_g": ("weight_kg", 1000.0), "length_mm": ("length_m", 1000.0)}


def subject_from_user(
    values: Mapping[str, Any], name: Namer, base: Subject | None = None
) -> Subject:
    """``base`` (e.g. the rig file's defaults) with what a person typed (the
    rig file's ``[subject]``, the ``run`` options): ``weight_g`` and
    ``length_mm`` instead of SI; None for not given. A bad value is refused
    naming ``name(key)`` as they wrote it."""
    fields: dict[str, Any] = base.to_dict() if base is not None else {}
    for key, value in values.items():
        if value is None:
            continue
        if key in USER_UNITS:
            field, per_si = USER_UNITS[key]
            low, high = WEIGHT_KG if field == "weight_kg" else LENGTH_M
            unit = key.rsplit("_", 1)[1]
            number = _number(value, name(key), low * per_si, high * per_si, unit)
            fields[field] = number / per_si
        else:
            fields[key] = value
    names = {field: user for user, (field, _) in USER_UNITS.items()}
    return Subject(**check_subject(fields, lambda key: name(names.get(key, key))))


def session_from_user(
    values: Mapping[str, Any], name: Namer, base: SessionInfo | None = None
) -> SessionInfo:
    """``base`` with what a person typed (None or no names: not given)."""
    fields: dict[str, Any] = base.to_dict() if base is not None else {}
    fields.update({k: v for k, v in values.items() if v is not None and v != []})
    return SessionInfo(**check_session(fields, name))


NOTE_LIMIT = 2000


def check_note(text: Any) -> str:
    """A timestamped note's text (``Session.note``): one to 2000 characters."""
    return check_text(text, "note", limit=NOTE_LIMIT, multiline=True)
