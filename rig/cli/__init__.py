"""The ``neurorig`` command line: one module per sub-command.

Each module defines ``register(subparsers)`` (adds its parser and sets
``func``). Heavy imports (Qt, numba kernels, the simulator) happen inside the
commands, so ``neurorig --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# One BLAS thread (set before numpy loads; a user's setting wins): the
# controller's own threads already share the cores, and multi-threaded BLAS
# only adds tail latency to closed-loop decisions (`neurorig selftest latency`
# on 2 cores: p95 decision 9 → 7 ms).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rig.cli import analyze, calibrate, export, gui, reset, run, selftest, serve, sim

COMMANDS = (sim, run, analyze, export, gui, calibrate, selftest, reset, serve)
# Commands that open a rig: each gets a persistent session log (rig/cli/_log.py).
SESSION_COMMANDS = ("run", "gui", "calibrate", "selftest", "reset", "serve")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level argument parser with one sub-command per job.

    >>> args = build_parser().parse_args(["run", "protocols/mapping.toml", "--sim"])
    >>> args.command, args.protocol, args.sim, args.out, args.dry_run
    ('run', 'protocols/mapping.toml', True, 'runs', False)
    """
    parser = argparse.ArgumentParser(
        prog="neurorig",
        description="Closed-loop neuromuscular testbed controller.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neurorig`` console script.

    A reader that stops early (``neurorig run P --dry-run | head -1``) ends the
    command quietly, as it ends any unix tool: exit status 141 (SIGPIPE), no
    traceback."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"]:  # the simulator has its own options and parser
        from firmware_bridge.sim import cli_main

        return cli_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command in SESSION_COMMANDS and not getattr(args, "dry_run", False):
        from rig.cli._log import start_session_log

        path = start_session_log(args.command, argv)
        if path is not None:
            print(f"log: {path}", file=sys.stderr)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
