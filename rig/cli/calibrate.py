"""``neurorig calibrate``: run a calibration procedure and write its file."""

from __future__ import annotations

import argparse

from rig.cli._common import add_board_arguments

KINDS = ("camera", "gain", "stimulator", "timing")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    parser = subparsers.add_parser(
        "calibrate", help="camera / gain / stimulator / timing calibration"
    )
    parser.add_argument("kind", choices=KINDS)
    add_board_arguments(parser)
    parser.add_argument(
        "--out", default="calibration-files", help="folder for calibration files"
    )
    parser.add_argument("--rig-id", default="rig-1", help="name of this rig")
    parser.add_argument(
        "--camera", help="camera for camera/timing calibration: index or 'sim'"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the procedure against the board (or the simulated rig)."""
    from rig.calibrate_command import run_calibrate

    return run_calibrate(args)
