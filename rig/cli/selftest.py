"""``neurorig selftest latency``: measure the closed loop's latency."""

from __future__ import annotations

import argparse
import contextlib

from rig.cli._common import add_board_arguments, fail, positive_int


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
    return run_latency_selftest(args)


def run_latency_selftest(args: argparse.Namespace) -> int:
    """CLI body: open the board (or the simulated rig), measure, print."""
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import simulated_rig_description
    from rig.procedures.latency import (
        external_simulator,
        measure_loop_latency,
        open_loop_session,
    )
    from rig.rig_file import DEFAULT_CHANNELS, RigDescription, RigFileError
    from rig.safety import default_safety_limits

    # The standard raceway's pins (the simulated rig's too) unless given.
    rig = simulated_rig_description(
        DEFAULT_CHANNELS, RigDescription(default_safety_limits())
    )
    try:
        rig = rig.with_positions_mm(args.electrode_positions_mm, DEFAULT_CHANNELS)
    except RigFileError as exc:
        return fail(str(exc))
    with contextlib.ExitStack() as stack:
        port = (
            stack.enter_context(external_simulator(args.seed))
            if args.sim
            else args.port
        )
        try:
            session = open_loop_session(port, rig)
        except (DeviceError, OSError, ValueError) as exc:
            return fail(f"cannot connect to the board: {exc}")
        stack.callback(session.close)
        where = f"the simulated rig (seed {args.seed}) on {port}" if args.sim else port
        print(f"closed-loop latency self-test: {args.n} stimuli on {where}")
        try:
            report = measure_loop_latency(session, n=args.n)
        except (DeviceError, TimeoutError) as exc:
            return fail(f"self-test stopped: {exc}")
    print(report.format())
    return 0
