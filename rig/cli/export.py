"""``neurorig export``: a recording out to the field's formats (docs/export.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="write a recording in another format (Open Ephys binary)",
        description="Write a neurorig recording folder in a format other tools read.",
    )
    parser.add_argument("recording", help="recording folder")
    parser.add_argument(
        "--openephys",
        metavar="DIR",
        help="an Open Ephys GUI binary-format session (GUI ≥ 0.6) in DIR (a new or "
        "empty folder), for SpikeInterface, neo and the Open Ephys tools",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Export to each format asked for."""
    from rig.cli._common import fail

    if not args.openephys:
        return fail("export: name a format, e.g. --openephys DIR")
    from rig.export.openephys import OpenEphysExportError, export_openephys
    from rig.recording import RecordingFormatError

    try:
        done = export_openephys(args.recording, args.openephys)
    except (OpenEphysExportError, RecordingFormatError, OSError) as exc:
        return fail(str(exc))
    how = "hard-linked" if done.linked else "copied"
    print(
        f"openephys: {done.folder} ({len(done.recordings)} recording(s), "
        f"{done.n_samples} samples {how}, {done.n_stimuli} stimuli)"
    )
    return 0
