"""``neurorig selftest latency``: measure the closed loop's latency."""

from __future__ import annotations

import argparse

from rig.cli._common import add_board_arguments, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``selftest`` sub-command."""
    parser = subparsers.add_parser("selftest", help="latency self-test")
    parser.add_argument("test", choices=("latency",))
    add_board_arguments(parser)
    parser.add_argument(
        "--n", type=positive_int, default=100, help="loop iterations (≥ 1)"
    )
    parser.add_argument(
        "--electrode-positions-mm",
        help="recording-pair centres along the body, A,B,C,D "
        "(default: the standard raceway's)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the latency self-test and print p50/p95/p99/max."""
    from rig.selftest import run_latency_selftest

    return run_latency_selftest(args)
