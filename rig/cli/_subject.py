"""The subject and session options of ``neurorig run`` (and of any command
that starts a recording): parsed here, checked by rig.recording.subject, and
laid over the rig file's ``[subject]`` and ``[session]`` defaults."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

# Subject and session options -> their field (rig.recording.subject), with the
# unit a person types (g, mm); the rig file's [subject] and [session] give the
# defaults these replace.
SUBJECT_OPTIONS = {
    "subject_id": ("--subject", "ID"),
    "species": ("--species", "'GENUS SPECIES'"),
    "sex": ("--sex", "M|F|U|O"),
    "description": ("--subject-description", "TEXT"),
    "age": ("--age", "ISO8601"),
    "date_of_birth": ("--date-of-birth", "YYYY-MM-DD"),
    "weight_g": ("--weight-g", "G"),
    "length_mm": ("--length-mm", "MM"),
}
SESSION_OPTIONS = {
    "experimenter": ("--experimenter", "'LAST, FIRST'"),
    "lab": ("--lab", "TEXT"),
    "institution": ("--institution", "TEXT"),
    "description": ("--session-description", "TEXT"),
    "notes": ("--notes", "TEXT"),
}


def add_subject_arguments(parser: argparse.ArgumentParser) -> None:
    """The subject and session options (written into the recording's metadata)."""
    from rig.recording.subject import SESSION_FIELDS, SUBJECT_FIELDS

    group = parser.add_argument_group(
        "subject and session (defaults: the rig file's [subject] and [session])"
    )
    numbers = {"weight_g": "body weight, g", "length_mm": "body length at rest, mm"}
    for field, (option, metavar) in SUBJECT_OPTIONS.items():
        group.add_argument(
            option,
            dest=f"subject_{field}",
            metavar=metavar,
            type=float if field in numbers else str,
            help=numbers.get(field) or SUBJECT_FIELDS[field],
        )
    for field, (option, metavar) in SESSION_OPTIONS.items():
        group.add_argument(
            option,
            dest=f"session_{field}",
            metavar=metavar,
            action="append" if field == "experimenter" else "store",
            help=SESSION_FIELDS[field]
            + (" (repeat for several)" if field == "experimenter" else ""),
        )


def describe_from_args(args: argparse.Namespace, rig: Any) -> Any:
    """``rig`` (a RigDescription) with its subject and session defaults
    replaced by the options given; MetadataError (one line naming the option)
    for a bad value."""
    from rig.recording.subject import session_from_user, subject_from_user

    subject = subject_from_user(
        {f: getattr(args, f"subject_{f}", None) for f in SUBJECT_OPTIONS},
        lambda f: SUBJECT_OPTIONS[f][0],
        rig.subject,
    )
    info = session_from_user(
        {f: getattr(args, f"session_{f}", None) for f in SESSION_OPTIONS},
        lambda f: SESSION_OPTIONS[f][0],
        rig.session_info,
    )
    return dataclasses.replace(rig, subject=subject, session_info=info)
