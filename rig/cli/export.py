"""``neurorig export RECORDING --nwb OUT.nwb | --openephys DIR``: a recording in
another format (docs/export.md).

A thin dispatcher: each format is one entry of ``FORMATS`` (its option and
the function that writes it, in ``rig.export``), so a further format is a few
lines here and one module there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rig.cli._common import fail


def _nwb(args: argparse.Namespace, out: str) -> int:
    from rig.cli.analyze import _progress_factory
    from rig.export import export_nwb

    result = export_nwb(
        args.recording,
        out,
        analysis=not args.no_analysis,
        progress=_progress_factory(not args.quiet),
        overwrite=args.overwrite,
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    size_mb = result.path.stat().st_size / 1e6
    print(
        f"nwb: {result.path} ({size_mb:.1f} MB; {result.n_series} electrical "
        f"series, {result.n_stimuli} stimuli, {result.n_trials} trials, "
        f"{result.n_frames} video frames, "
        f"{'with' if result.analysed else 'without'} the analysis) in "
        f"{result.seconds:.1f} s"
    )
    return 0


def _openephys(args: argparse.Namespace, out: str) -> int:
    from rig.export.openephys import export_openephys

    done = export_openephys(args.recording, out)
    how = "hard-linked" if done.linked else "copied"
    print(
        f"openephys: {done.folder} ({len(done.recordings)} recording(s), "
        f"{done.n_samples} samples {how}, {done.n_stimuli} stimuli)"
    )
    return 0


# dest -> (option, metavar, help, writer(args, destination) -> exit status)
FORMATS: dict[str, tuple[str, str, str, Callable[[argparse.Namespace, str], int]]] = {
    "nwb": (
        "--nwb",
        "OUT.nwb",
        "a Neurodata Without Borders file (pynwb: pip install 'neurorig[nwb]'); "
        "docs/export.md",
        _nwb,
    ),
    "openephys": (
        "--openephys",
        "DIR",
        "an Open Ephys GUI binary-format session (GUI >= 0.6) in DIR (a new or "
        "empty folder), for SpikeInterface, neo and the Open Ephys tools",
        _openephys,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="write a recording in another format (NWB, Open Ephys binary)",
        description="Write a neurorig recording folder in a format the field's "
        "tools read (docs/export.md).",
    )
    parser.add_argument("recording", help="recording folder")
    formats = parser.add_mutually_exclusive_group(required=True)
    for dest, (option, metavar, text, _) in FORMATS.items():
        formats.add_argument(option, dest=dest, metavar=metavar, help=text)
    parser.add_argument(
        "--no-analysis",
        action="store_true",
        help="NWB: the data alone, without neurorig analyze's results and the "
        "tracked segment displacement (faster)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="NWB: replace an existing output"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Write the one format asked for; a refusal is one line, exit status 2."""
    from rig.export import ExportError
    from rig.export.openephys import OpenEphysExportError
    from rig.recording import RecordingFormatError

    if not Path(args.recording).is_dir():
        return fail(
            f"{args.recording}: not a neurorig recording folder "
            "(allowed: a folder neurorig run wrote)"
        )
    for dest, (option, _, _, write) in FORMATS.items():
        destination = getattr(args, dest)
        if destination is None:
            continue
        try:
            return write(args, destination)
        except (ExportError, OpenEphysExportError, RecordingFormatError) as exc:
            return fail(str(exc))
        except OSError as exc:  # a full disk, a folder we may not write in
            return fail(f"{option} {destination}: {exc.strerror or exc}")
    return fail("give a format: " + ", ".join(f[0] for f in FORMATS.values()))
