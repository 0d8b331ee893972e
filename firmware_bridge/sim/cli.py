"""``neurorig sim``: the simulated rig as a standalone serial device.

Run by hand it serves until Ctrl-C. ``neurorig run --sim`` (and the other
``--sim`` front doors, through ``rig.open_rig("sim://?process=own")``) start
it with ``--stdin-control``: it then serves until its standard input, a pipe
from the host, closes, which the kernel does when the host ends, even by
SIGKILL, so a simulator never outlives the program that started it. One JSON
line on that pipe, ``{"write_ground_truth": PATH}``, asks it to write what it
did there as it stops (with ``--keep-ground-truth``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

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
    p.add_argument(
        "--target", choices=("worm", "checkerboard"), default="worm",
        help="what lies under the camera: the worm, or a 9×6 checkerboard of 10 mm "
        "squares moved between 12 poses (for neurorig calibrate camera)",
    )  # fmt: skip
    p.add_argument(
        "--stdin-control", action="store_true",
        help="serve until standard input closes (the program that started this "
        "one ended, however), ignoring Ctrl-C; a line "
        '{"write_ground_truth": PATH} on it writes the ground truth at the end',
    )  # fmt: skip
    p.add_argument(
        "--keep-ground-truth", action="store_true",
        help="keep what the rig did (~10 MB a minute) for write_ground_truth",
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


CHECKERBOARD_SQUARES = (9, 6)  # inner corners
CHECKERBOARD_SQUARE_MM = 10.0
CHECKERBOARD_POSES = 12


def checkerboard_poses(
    n: int = CHECKERBOARD_POSES, seed: int = 0
) -> list[tuple[tuple[float, float], float]]:
    """Where someone would lay a printed board on the raceway, one pose per
    frame in turn: ((x_mm, y_mm), angle_rad), all in the camera's view."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        ((rng.uniform(-5, 90), rng.uniform(-60, -5)), rng.uniform(-0.3, 0.3))
        for _ in range(n)
    ]


def cli_main(argv: list[str] | None = None) -> int:
    """Start the rig, print its port, run until Ctrl-C (or SIGTERM), or with
    ``--stdin-control`` until standard input closes."""
    args = build_parser().parse_args(argv)
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"neurorig sim: error: {exc}", file=sys.stderr)
        return 2
    # Only --keep-ground-truth has it written out: else do not keep it.
    rig = SimulatedRig(
        seed=args.seed, n_channels=args.channels, sample_rate_hz=args.rate,
        faults=plan, keep_ground_truth=args.keep_ground_truth,
    )  # fmt: skip
    if args.target == "checkerboard":
        rig.camera().show_checkerboard(
            CHECKERBOARD_SQUARES, CHECKERBOARD_SQUARE_MM, checkerboard_poses()
        )
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
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    control = _StdinControl(done) if args.stdin_control else None
    print(rig.port, flush=True)
    try:
        while not done.wait(0.5) and not rig.unplugged:
            if control is not None and control.orphaned():
                break
    except KeyboardInterrupt:
        pass
    finally:
        if camera_server is not None:
            camera_server.close()
        rig.close()
    if control is not None and control.ground_truth_to is not None:
        return _write_ground_truth(rig, control.ground_truth_to)
    return 0


class _StdinControl:
    """``--stdin-control``: the host's pipe on standard input. Its end (EOF)
    stops the rig; a ``{"write_ground_truth": PATH}`` line asks for the truth."""

    def __init__(self, done: threading.Event) -> None:
        # The host decides when this ends; a Ctrl-C meant for it is not ours.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.done = done
        self.ground_truth_to: Path | None = None
        self._parent = os.getppid()
        threading.Thread(target=self._follow, name="stdin-control", daemon=True).start()

    def orphaned(self) -> bool:
        """Whether the process that started this one has gone (a second check
        beside the pipe, should it have been handed on to another process)."""
        return os.getppid() != self._parent

    def _follow(self) -> None:
        try:
            for line in sys.stdin:
                self._request(line)
        except (OSError, ValueError):  # a broken or closed pipe: the host is gone
            pass
        self.done.set()

    def _request(self, line: str) -> None:
        try:
            request = json.loads(line)
            self.ground_truth_to = Path(request["write_ground_truth"])
        except (ValueError, KeyError, TypeError):
            print(
                f"neurorig sim: ignored {line.strip()[:80]!r} on standard input: "
                'allowed {"write_ground_truth": PATH}',
                file=sys.stderr,
            )


def _write_ground_truth(rig: SimulatedRig, path: Path) -> int:
    if not rig.keep_ground_truth:
        print(
            f"neurorig sim: error: no ground truth for {path}: start with "
            "--keep-ground-truth",
            file=sys.stderr,
        )
        return 2
    try:
        rig.write_ground_truth(path)
    except OSError as exc:
        print(f"neurorig sim: error: ground truth {path}: {exc}", file=sys.stderr)
        return 1
    return 0
