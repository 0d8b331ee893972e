"""``neurorig calibrate``: run a calibration procedure and write its file."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rig.cli._common import add_board_arguments, board_url, fail, out_folder_problem

KINDS = ("camera", "gain", "stimulator", "timing", "led-region")
NEEDS_CAMERA = ("camera", "timing", "led-region")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="camera / gain / stimulator / timing / led-region calibration",
        description="Run a calibration procedure on the board (or the simulated "
        "rig) and write <out>/<kind>.json. Calibrations already in --out are in "
        "force while it runs: the timing calibration reads the LED where "
        "led_region.json says, and the LED region calibration takes the "
        "exposure delay from timing.json (docs/calibration.md).",
    )
    parser.add_argument("kind", choices=KINDS)
    add_board_arguments(parser)
    parser.add_argument(
        "--out", default="calibration-files", help="folder for calibration files"
    )
    parser.add_argument("--rig-id", default="rig-1", help="name of this rig")
    parser.add_argument(
        "--camera",
        help="camera for the camera, timing and led-region calibrations: an index, "
        "a live y4m stream, or 'sim' (default with --sim)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the procedure against the board (or the simulated rig)."""
    return run_calibrate(args)


def run_calibrate(args: argparse.Namespace) -> int:
    """Open the board, run the procedure, write the calibration file."""
    from calibration import CalibrationError, CalibrationSet, save_calibration
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import open_rig
    from rig.procedures.calibrate import PROCEDURES

    problem = out_folder_problem(args.out, "--out")
    if problem is not None:  # before the procedure, not after it
        return fail(problem)
    camera = None
    if args.kind in NEEDS_CAMERA:
        camera = args.camera or ("sim" if args.sim else None)
        if camera is None:
            return fail(
                f"{args.kind} calibration needs a camera: give --camera INDEX|STREAM"
            )
    # The simulated rig lays a checkerboard under its camera, as a person would.
    target = {"target": "checkerboard"} if args.kind == "camera" else {}
    in_force = CalibrationSet.load(args.out)
    try:
        # The timing and LED region calibrations drive the LED themselves: no
        # sync code beside them.
        session = open_rig(
            board_url(args, **target),
            camera=camera,
            calibrations=in_force,
            optical_sync=False,
        )
    except (DeviceError, OSError, ValueError) as exc:
        return fail(f"cannot connect to the board: {exc}")
    try:
        session.start()
        time.sleep(0.3)
        calibration: Any = PROCEDURES[args.kind](session, rig_id=args.rig_id)
    except (CalibrationError, DeviceError) as exc:
        return fail(f"{args.kind} calibration failed: {exc}")
    finally:
        session.close()
    try:  # a fit that came out NaN or out of range is refused, not written
        path = save_calibration(calibration, args.out)
    except CalibrationError as exc:
        return fail(f"{args.kind} calibration failed: {exc}")
    print(f"{args.kind} calibration written to {path}")
    for key in (
        "px_per_mm",
        "uv_per_count",
        "coefficients",
        "offset_samples",
        "offset_s",
        "accuracy_samples",
        "jitter_samples",
        "residual_rms",
        "reprojection_error_px",
        "correlation",
        "separation",
    ):
        if hasattr(calibration, key):
            print(f"  {key}: {getattr(calibration, key)}")
    if args.kind == "led-region":
        region = ", ".join(map(str, calibration.region))
        print(
            f"  the LED shows at [top, bottom, left, right] = [{region}]; in force "
            f"with --calibrations {args.out}, or as the rig file's "
            f"[camera] led_region_px = [{region}]"
        )
    return 0
