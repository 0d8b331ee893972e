"""``neurorig sim``: run the simulated board on a pseudo-terminal and print its port."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` sub-command (its options belong to firmware_bridge.sim)."""
    subparsers.add_parser(
        "sim",
        help="simulated rig on a pseudo-terminal",
        description="Start the simulated board (firmware emulator + earthworm) on a "
        "pseudo-terminal, print the port path, run until Ctrl-C. Any program can "
        "open the port as it would open a real board. `neurorig sim --help` lists "
        "the rig and fault-injection options.",
    )
    # `neurorig sim ...` is handed to firmware_bridge.sim's own parser by main();
    # this entry only lists the command in `neurorig --help`.
