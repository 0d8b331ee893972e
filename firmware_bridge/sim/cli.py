"""``neurorig sim``: the simulated rig as a standalone serial device."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Callable

from firmware_bridge.sim.board import BoardLimits
from firmware_bridge.sim.camera_server import CameraServer
from firmware_bridge.sim.fault_plan import FaultPlan
from firmware_bridge.sim.simulated_rig import SimulatedRig

# Each option's value is checked by its argparse type, so a bad one gets
# argparse's one line naming the option ("argument --rate: ...") and exit 2.


def _number(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise argparse.ArgumentTypeError(f"{text}: allowed {what}")
    return value


def _whole(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text}: allowed {what}")
    return value


def _probability(text: str) -> float:
    return _number(text, 0.0, 1.0, "a probability 0–1")


def _time(text: str) -> float:
    return _number(text, 0.0, 1e6, "a time ≥ 0 s")


def _rate_hz(text: str) -> float:
    return _number(text, 0.0, 1e3, "0–1000 per second")


def _seed(text: str) -> int:
    return _whole(text, 0, 2**63 - 1, "a whole number ≥ 0")


def _burst_bytes(text: str) -> int:
    return _whole(text, 1, 1 << 20, "1–1048576 bytes")


def _stall(text: str) -> tuple[float, float]:
    start, colon, duration = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"{text!r}: give START:SECONDS, e.g. 2:0.5")
    return _time(start), _number(duration, 0.05, 5.0, "SECONDS 0.05–5")


def _named(kind: type[int] | type[float]) -> Callable[[str], tuple[str, float]]:
    """Parser of ``NAME:VALUE`` options (a frame kind or command, a number)."""

    def parse(text: str) -> tuple[str, float]:
        name, _, value = text.rpartition(":")
        try:
            return name.upper(), kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected NAME:{kind.__name__}"
            ) from None

    return parse


def _channels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    high = BoardLimits().max_channels
    if not 1 <= value <= high:
        raise argparse.ArgumentTypeError(f"{value}: allowed 1–{high} recording pairs")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Options of the simulated rig, including fault injection."""
    p = argparse.ArgumentParser(
        prog="neurorig sim",
        description="Run the simulated board on a pseudo-terminal and print its path.",
    )
    p.add_argument("--seed", type=_seed, default=1, help="worm and fault seed (≥ 0)")
    rates = BoardLimits().sample_rates_hz
    p.add_argument(
        "--channels", type=_channels, default=4, help="recording pairs (1–32)"
    )
    p.add_argument(
        "--rate", type=int, choices=rates, default=30_000, metavar="HZ",
        help=f"sample rate, Hz: one of {', '.join(map(str, rates))}",
    )  # fmt: skip
    p.add_argument(
        "--camera-socket", metavar="PATH",
        help="also serve the simulated camera as a live grayscale YUV4MPEG2 stream "
        "on a Unix socket made at PATH (the host opens it with --camera PATH)",
    )  # fmt: skip
    p.add_argument(
        "--camera-truth", metavar="FILE.csv",
        help="with --camera-socket: write what each frame sent truly shows (its "
        "frame number, trigger, exposure sample, LED, pixel digest), a line per "
        "frame, for checking a host's frame table from outside",
    )  # fmt: skip
    f = p.add_argument_group("fault injection (deterministic by --seed)")
    for name, per in (
        ("--bit-flip-rate", "per byte"),
        ("--byte-drop-rate", "per byte"),
        ("--byte-duplicate-rate", "per byte"),
        ("--frame-truncate-rate", "per frame"),
        ("--frame-duplicate-rate", "per frame"),
    ):
        f.add_argument(name, type=_probability, default=0.0, help=f"{per} (0–1)")
    f.add_argument(
        "--garbage-burst-rate", type=_rate_hz, default=0.0, help="bursts/s (0–1000)"
    )
    f.add_argument("--garbage-burst-bytes", type=_burst_bytes, default=4096)
    f.add_argument(
        "--stall", type=_stall, action="append", default=[], metavar="START:SECONDS",
        help="no output from START s for SECONDS (0.05–5); repeatable",
    )  # fmt: skip
    f.add_argument("--unplug-at", type=_time, help="the port vanishes at this time, s")
    f.add_argument("--reboot-at", type=_time, help="the board resets at this time, s")
    f.add_argument(
        "--camera-drop-rate", type=_probability, default=0.0, help="per frame (0–1)"
    )
    f.add_argument(
        "--damage", type=_named(int), action="append", default=[], metavar="KIND:N",
        help="flip a bit in the N-th (from 0) board frame of KIND (HELLO_REPLY, "
        "STATUS, STIM_DELIVERED, ACK:STIMULATE, ...); repeatable",
    )  # fmt: skip
    f.add_argument(
        "--lose", type=_named(int), action="append", default=[], metavar="COMMAND:N",
        help="the N-th (from 0) host COMMAND never reaches the board; repeatable",
    )  # fmt: skip
    f.add_argument(
        "--stall-after", type=_named(float), action="append", default=[],
        metavar="COMMAND:SECONDS",
        help="no output for SECONDS (0.05–5) once the board has answered the "
        "first COMMAND; repeatable",
    )  # fmt: skip
    return p


def plan_from_args(args: argparse.Namespace) -> FaultPlan:
    """The FaultPlan the options describe."""
    return FaultPlan(
        seed=args.seed,
        bit_flip_rate=args.bit_flip_rate,
        byte_drop_rate=args.byte_drop_rate,
        byte_duplicate_rate=args.byte_duplicate_rate,
        frame_truncate_rate=args.frame_truncate_rate,
        frame_duplicate_rate=args.frame_duplicate_rate,
        garbage_burst_rate_hz=args.garbage_burst_rate,
        garbage_burst_bytes=args.garbage_burst_bytes,
        stalls=tuple(args.stall),
        unplug_at_s=args.unplug_at,
        reboot_at_s=args.reboot_at,
        camera_drop_rate=args.camera_drop_rate,
        damage_frames=tuple(args.damage),
        lose_commands=tuple(args.lose),
        stall_after=tuple(args.stall_after),
    )


def cli_main(argv: list[str] | None = None) -> int:
    """Start the rig, print its port, run until Ctrl-C (or SIGTERM)."""
    args = build_parser().parse_args(argv)
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"neurorig sim: error: {exc}", file=sys.stderr)
        return 2
    # Nothing here writes the ground truth out: do not keep it (~10 MB a minute).
    rig = SimulatedRig(
        seed=args.seed, n_channels=args.channels, sample_rate_hz=args.rate,
        faults=plan, keep_ground_truth=False,
    )  # fmt: skip
    camera_server = None
    if args.camera_truth and not args.camera_socket:
        rig.close()
        print(
            "neurorig sim: error: --camera-truth needs --camera-socket", file=sys.stderr
        )
        return 2
    if args.camera_socket:
        path = args.camera_socket
        try:
            camera_server = CameraServer(rig, path, truth_path=args.camera_truth)
        except (OSError, ValueError) as exc:
            rig.close()
            # ValueErrors name the option; an OSError (no such folder) does not
            where = "" if isinstance(exc, ValueError) else f"--camera-socket {path}: "
            truth = args.camera_truth
            if isinstance(exc, OSError) and truth and exc.filename == truth:
                where = f"--camera-truth {args.camera_truth}: "
            print(f"neurorig sim: error: {where}{exc}", file=sys.stderr)
            return 2
    print(rig.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5) and not rig.unplugged:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if camera_server is not None:
            camera_server.close()
        rig.close()
    return 0
