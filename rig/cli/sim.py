"""``neurorig sim``: run the simulated board on a pseudo-terminal and print its port."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` sub-command (its options belong to firmware_bridge.sim)."""
    parser = subparsers.add_parser(
        "sim",
        help="simulated rig on a pseudo-terminal",
        description="Start the simulated board (firmware emulator + earthworm) on a "
        "pseudo-terminal, print the port path, run until Ctrl-C. Any program can "
        "open the port as it would open a real board. `neurorig sim --help` lists "
        "the rig and fault-injection options.",
        add_help=False,
    )
    parser.add_argument("sim_args", nargs=argparse.REMAINDER)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Hand the arguments to the simulator's own command line."""
    from firmware_bridge.sim import cli_main

    return cli_main(args.sim_args)
