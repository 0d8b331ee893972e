"""``neurorig gui``: the lab desktop app."""

from __future__ import annotations

import argparse

from rig.cli._common import add_rig_arguments, add_video_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gui`` sub-command."""
    parser = subparsers.add_parser("gui", help="the desktop app (PyQt5 + pyqtgraph)")
    parser.add_argument(
        "--sim",
        action="store_true",
        help="connect at start to a simulated rig in a process of its own",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulated rig's seed")
    parser.add_argument(
        "--camera",
        help="camera: a device index, a video file, a live y4m stream (named pipe "
        "or Unix socket), or 'sim' (default: the simulated camera on the "
        "simulated rig, none on a board)",
    )
    add_rig_arguments(parser)
    add_video_arguments(parser)
    parser.add_argument(
        "--protocol", help="a protocol file to load once connected (F5 runs it)"
    )
    parser.add_argument(
        "--remote",
        nargs="?",
        const="127.0.0.1:5555",
        metavar="HOST:PORT",
        help="serve the remote API with the session (rig.remote, docs/remote.md; "
        "loopback only; also in the Remote menu)",
    )
    parser.add_argument(
        "--screenshot", help="render the running window to this PNG and exit"
    )
    parser.add_argument(
        "--after", type=float, default=3.0, help="seconds before the screenshot"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Start the GUI (Qt is imported only here)."""
    import os

    from calibration import CalibrationSet
    from rig.cli._common import board_url, fail, with_video_options
    from rig.rig_file import DEFAULT_CHANNELS, load_rig_file

    try:  # file errors now, in the terminal, before any window opens
        args.rig_description = with_video_options(
            load_rig_file(args.rig).with_positions_mm(
                args.electrode_positions_mm, DEFAULT_CHANNELS
            ),
            args,
        )
    except ValueError as exc:
        return fail(str(exc))
    args.calibration_set = CalibrationSet.load(args.calibrations)
    args.connect_to = board_url(args) if args.sim else None
    if args.remote is not None:
        from rig.remote._access import BindRefused, parse_bind

        try:  # a non-loopback address is refused here, in the terminal
            parse_bind(args.remote)
        except BindRefused as exc:
            return fail(str(exc).replace("--bind", "--remote"))
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and not os.environ.get("QT_QPA_PLATFORM"):
        if not args.screenshot:
            return fail(
                "no display (DISPLAY and WAYLAND_DISPLAY are unset): run on a desktop, "
                "or give --screenshot FILE.png to render offscreen"
            )
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    from rig.gui.app import run_app

    return run_app(args)
