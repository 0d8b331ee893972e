"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def add_rig_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rig FILE`` (limits and geometry), its electrode override, calibrations."""
    parser.add_argument(
        "--rig",
        "--safety",
        dest="rig",
        metavar="FILE",
        help="rig file: safety limits, electrode positions, raceway and camera "
        "placement (rigs/example-rig.toml; default: conservative built-in limits, "
        "no geometry on a real board)",
    )
    parser.add_argument(
        "--electrode-positions-mm",
        metavar="A,B,C,D",
        help="recording-pair centres along the body, mm from the head (overrides "
        "the rig file's [electrodes])",
    )
    parser.add_argument(
        "--calibrations", help="folder of calibration files to apply and record"
    )


def positive_int(text: str) -> int:
    """Argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: allowed a whole number ≥ 1")
    return value


def out_folder_problem(path: str | None, option: str) -> str | None:
    """Why ``path`` cannot be the output folder of ``option`` (None if it can): it,
    or the nearest existing folder above it, is an existing file."""
    if path is None:
        return None
    folder = Path(path)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if candidate.is_dir():
                return None
            where = "is" if candidate == folder else f"is inside {candidate}, which is"
            return (
                f"{option} {path} {where} an existing file; allowed: a folder "
                "(made if missing)"
            )
    return None


def board_url(args: argparse.Namespace) -> str:
    """The URL ``rig.open_rig`` takes for these arguments."""
    if args.sim:
        return f"sim://?seed={args.seed}"
    return args.port


def fail(message: str) -> int:
    """Print an error for a person (no traceback) and return exit status 2."""
    print(f"neurorig: error: {message}", file=sys.stderr)
    return 2
