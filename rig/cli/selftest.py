"""``neurorig selftest latency``: measure the closed loop's latency, alone and
with the camera, live tracking and recording on."""

from __future__ import annotations

import argparse
import contextlib
import tempfile

from rig.cli._common import add_board_arguments, fail, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``selftest`` sub-command."""
    parser = subparsers.add_parser(
        "selftest",
        help="latency self-test",
        description="Measure the closed loop (stimulus → response measured → "
        "next stimulus chosen → written) twice: alone, then with the camera at "
        "60 fps, live segment tracking and recording on, as in a real run; print "
        "p50/p95/p99/max of both (docs/closed-loop.md).",
    )
    parser.add_argument("test", choices=("latency",))
    add_board_arguments(parser)
    parser.add_argument(
        "--n", type=positive_int, default=100, help="loop iterations (≥ 1) per pass"
    )
    parser.add_argument(
        "--camera",
        help="camera for the second pass (an index or a live y4m stream; with "
        "--sim the simulated camera); without one on a board, only the first "
        "pass runs",
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
    """CLI body: open the board (or the simulated rig), measure twice, print."""
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import SimulatorProcess, simulated_rig_description
    from rig.procedures.latency import (
        format_reports,
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
        port, camera = args.port, args.camera
        if args.sim:  # board and camera in their own process, as hardware
            try:
                child = stack.enter_context(
                    SimulatorProcess({"seed": str(args.seed)}, camera=True)
                )
            except (OSError, ValueError) as exc:
                return fail(f"cannot start the simulated rig: {exc}")
            port, camera = child.port, str(child.camera_socket)
        where = f"the simulated rig (seed {args.seed}) on {port}" if args.sim else port
        print(f"closed-loop latency self-test: {args.n} stimuli per pass on {where}")
        reports = []
        for with_camera in (False, True):
            if with_camera and camera is None:
                reports.append(None)
                continue
            folder = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="neurorig-selftest-")
            )
            try:
                session = open_loop_session(
                    port,
                    rig,
                    camera=camera if with_camera else None,
                    record_to=f"{folder}/recording" if with_camera else None,
                )
            except (DeviceError, OSError, ValueError) as exc:
                return fail(f"cannot connect to the board: {exc}")
            try:
                reports.append(measure_loop_latency(session, n=args.n))
            except (DeviceError, TimeoutError) as exc:
                return fail(f"self-test stopped: {exc}")
            finally:
                session.close()
    print(format_reports(reports[0], reports[1]))
    return 0
