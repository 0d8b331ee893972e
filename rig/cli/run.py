"""``neurorig run PROTOCOL``: run a stimulation protocol headless and record it."""

from __future__ import annotations

import argparse

from rig.cli._common import (
    SIM_HELP,
    add_board_arguments,
    add_rig_arguments,
    add_video_arguments,
)
from rig.cli._subject import add_subject_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run a protocol file headless, recording everything",
        description="Validate PROTOCOL against the rig's safety limits, run it on the "
        "board (or the simulated rig) with a progress bar, and record samples, "
        "events and video into a new folder under --out.",
    )
    parser.add_argument("protocol", help="protocol file (TOML), see docs/protocols.md")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the expanded sequence, duration and charge; send nothing",
    )
    add_board_arguments_optional(parser)
    parser.add_argument(
        "--camera",
        help="camera: a device index, a video file, a live y4m stream (named pipe "
        "or Unix socket, e.g. from neurorig sim --camera-socket), or 'sim' (the "
        "simulated camera)",
    )
    parser.add_argument("--out", default="runs", help="folder for recordings")
    parser.add_argument(
        "--resume",
        metavar="RECORDING",
        help="a recording of this protocol that stopped early (fault, unplug, "
        "crash): run only the trials it did not deliver, into a new recording "
        "linked to it (metadata resumed_from)",
    )
    add_rig_arguments(parser)
    add_video_arguments(parser)
    add_subject_arguments(parser)
    parser.set_defaults(func=main)


def add_board_arguments_optional(parser: argparse.ArgumentParser) -> None:
    """Like add_board_arguments, but --dry-run needs no board."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--port", help="serial port of the board (e.g. /dev/ttyACM0)")
    group.add_argument("--sim", action="store_true", help=SIM_HELP)
    parser.add_argument("--seed", type=int, default=1, help="simulated rig's seed")


def main(args: argparse.Namespace) -> int:
    """Validate, then dry-run or run."""
    from rig.cli.run_protocol import run_protocol_command

    return run_protocol_command(args)


__all__ = ["add_board_arguments", "register"]
