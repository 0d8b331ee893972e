"""``neurorig serve``: the rig, headless, driven and watched from other processes.

Opens the board (or the simulated rig) as ``neurorig run`` does, starts the
session and serves it through the remote API (rig.remote, docs/remote.md)
until Ctrl-C. Ctrl-C is the local emergency stop: the board is disarmed first,
then the server stops and the session closes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from rig.cli._common import (
    add_board_arguments,
    add_rig_arguments,
    add_video_arguments,
    board_url,
    fail,
    out_folder_problem,
    with_video_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the rig to notebooks and other programs (remote API), no GUI",
        description="Open the board (or the simulated rig), start streaming, and "
        "serve commands (arm, stimulate, run a protocol, record, emergency stop) "
        "and events over ZeroMQ on the loopback interface, to clients holding "
        "the printed token (docs/remote.md). Ctrl-C disarms the board and stops.",
    )
    add_board_arguments(parser)
    parser.add_argument(
        "--camera",
        help="camera: a device index, a video file, a live y4m stream, or 'sim'",
    )
    parser.add_argument(
        "--bind",
        default="127.0.0.1:5555",
        metavar="HOST:PORT",
        help="where commands are served (events on PORT+1; port 0: any free "
        "ports, printed); loopback only unless --allow-remote (default "
        "%(default)s)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --bind (the token then crosses the network "
        "in clear: prefer an SSH tunnel, docs/remote.md)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="where the token is written, readable by you only (default "
        "$XDG_RUNTIME_DIR/neurorig/remote-PORT.token)",
    )
    parser.add_argument(
        "--out", default="runs", help="folder for recordings started remotely"
    )
    add_rig_arguments(parser)
    add_video_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM): then emergency stop, stop, close."""
    from rig.remote._access import BindRefused, parse_bind

    try:  # refused before the board is opened
        parse_bind(args.bind, allow_remote=args.allow_remote)
    except BindRefused as exc:
        return fail(str(exc))
    problem = out_folder_problem(args.out, "--out")
    if problem is not None:
        return fail(problem)
    session_or_error = _open(args)
    if isinstance(session_or_error, str):
        return fail(session_or_error)
    session = session_or_error
    try:
        return _serve(args, session)
    finally:
        session.close()


def _open(args: argparse.Namespace):
    from calibration import CalibrationSet
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import open_rig
    from rig.rig_file import DEFAULT_CHANNELS, load_rig_file

    try:
        rig = with_video_options(
            load_rig_file(args.rig).with_positions_mm(
                args.electrode_positions_mm, DEFAULT_CHANNELS
            ),
            args,
        )
        session = open_rig(
            board_url(args),
            camera=args.camera,
            rig=rig,
            calibrations=CalibrationSet.load(args.calibrations),
        )
    except (DeviceError, OSError, ValueError) as exc:
        return f"cannot open the rig: {exc}"
    try:
        session.start()
    except (DeviceError, OSError, ValueError) as exc:
        session.close()
        return f"cannot start the rig: {exc}"
    return session


def _serve(args: argparse.Namespace, session) -> int:
    import zmq

    from rig.remote.server import RemoteServer

    server = RemoteServer(
        session,
        bind=args.bind,
        allow_remote=args.allow_remote,
        token_file=args.token_file,
        recordings_root=args.out,
    )
    # SIGTERM (a service manager stopping us) ends like Ctrl-C; the handler is
    # in place before the address is printed, so a client that stops us as
    # soon as it reads it still gets the emergency stop first.
    previous = signal.signal(signal.SIGTERM, lambda *_: _interrupt())
    try:
        try:
            server.start()
        except zmq.ZMQError as exc:
            return fail(f"cannot serve on {args.bind}: {exc}")
        for warning in session.setup_warnings():
            print(f"warning: {warning}", file=sys.stderr)
        print(f"serving: {server.address} (events {server.events_address})")
        print(f"token: {server.token}")
        print(f"token file: {server.token_file}")
        print("Ctrl-C: emergency stop and quit", flush=True)
        stop = threading.Event()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        session.emergency_stop()  # the local stop first, before anything else
        print("emergency stop: board disarmed", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    return 0


def _interrupt() -> None:
    raise KeyboardInterrupt
