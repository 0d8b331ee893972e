"""``neurorig reset``: bring a board back to a known, safe state.

After an emergency stop, a latched fault (e.g. HOST_LOSS) or a host that was
killed mid-run (the board still streaming, so the next run is refused), this
stops the stream, disarms, and clears the board's latched fault. The board
is left disarmed: arming is always a separate, deliberate step.
"""

from __future__ import annotations

import argparse

from rig.cli._common import add_board_arguments, board_url, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reset`` sub-command."""
    parser = subparsers.add_parser(
        "reset",
        help="stop a stale stream, disarm and clear a latched fault",
        description="Bring the board to a known, safe state: not streaming, "
        "disarmed, no latched fault.",
    )
    add_board_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Open the board, stop, disarm, clear; say what it was and what it is."""
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import open_rig

    try:
        session = open_rig(board_url(args))
    except (DeviceError, OSError, ValueError) as exc:
        return fail(f"cannot connect to the board: {exc}")
    device = session.device
    try:
        before = device.status()
        for step in (device.stop_stream, device.disarm, device.reset_fault):
            try:
                step()
            except DeviceError as exc:  # e.g. not streaming: nothing to stop
                if "INVALID_STATE" not in str(exc):
                    raise
        after = device.status()
    except DeviceError as exc:
        return fail(f"reset failed: {exc}")
    finally:
        session.close()
    print(f"before: {_describe(before)}")
    print(f"after:  {_describe(after)}")
    return 0


def _describe(status) -> str:
    from firmware_bridge.protocol import FaultCode, StatusFlag

    flags = [f.name.lower() for f in StatusFlag if f and status.flags & f]
    fault = FaultCode(status.fault).name if status.fault else "no fault"
    return f"{', '.join(flags) or 'idle'}; {fault}"
