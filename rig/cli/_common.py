"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import sys


def add_board_arguments(parser: argparse.ArgumentParser) -> None:
    """``--port PATH`` or ``--sim`` (exactly one), plus ``--seed`` for the simulator."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--port", help="serial port of the board (e.g. /dev/ttyACM0)")
    group.add_argument(
        "--sim", action="store_true", help="start a simulated rig on a pseudo-terminal"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="simulated rig's seed (with --sim)"
    )


def board_url(args: argparse.Namespace) -> str:
    """The URL Device.open takes for these arguments."""
    if args.sim:
        return f"sim://?seed={args.seed}"
    return args.port


def fail(message: str) -> int:
    """Print an error for a person (no traceback) and return exit status 2."""
    print(f"neurorig: error: {message}", file=sys.stderr)
    return 2
