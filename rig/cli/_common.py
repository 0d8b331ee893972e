"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

SIM_HELP = (
    "start a simulated rig (board and camera) in a process of its own, on a "
    "pseudo-terminal, as a board would be"
)


def add_board_arguments(parser: argparse.ArgumentParser) -> None:
    """``--port PATH`` or ``--sim`` (exactly one), plus ``--seed`` for the simulator."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--port", help="serial port of the board (e.g. /dev/ttyACM0)")
    group.add_argument("--sim", action="store_true", help=SIM_HELP)
    parser.add_argument(
        "--seed", type=int, default=1, help="simulated rig's seed (with --sim)"
    )


def add_rig_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rig FILE`` (limits and geometry), its electrode override, calibrations."""
    parser.add_argument(
        "--rig",
        "--safety",
        dest="rig",
        metavar="FILE",
        help="rig file: safety limits, electrode positions, raceway and camera "
        "placement (rigs/example-rig.toml; default: conservative built-in limits, "
        "no geometry on a real board)",
    )
    parser.add_argument(
        "--electrode-positions-mm",
        metavar="A,B,C,D",
        help="recording-pair centres along the body, mm from the head (overrides "
        "the rig file's [electrodes])",
    )
    parser.add_argument(
        "--calibrations", help="folder of calibration files to apply and record"
    )


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """``--video-codec`` and ``--video-crop``: how recordings store the video
    (replacing the rig file's ``[video]``)."""
    parser.add_argument(
        "--video-codec",
        metavar="ffv1|mjpeg",
        help="video storage: ffv1 (lossless, the default; ~550 MB/min at 640×480 "
        "60 fps) or mjpeg (lossy, ~56 MB/min); replaces the rig file's [video] codec",
    )
    parser.add_argument(
        "--video-crop",
        metavar="TOP,BOTTOM,LEFT,RIGHT",
        help="store only this region of the camera image (px, half-open), e.g. "
        "around the raceway; tracking stays in the whole image's pixels",
    )


def with_video_options(rig: Any, args: argparse.Namespace) -> Any:
    """``rig`` with ``--video-codec``/``--video-crop`` applied; ValueError
    (one line naming the option and what is allowed) for a bad value."""
    import dataclasses

    from rig.recording import VideoStorage
    from rig.recording._video import check_video_storage

    codec = getattr(args, "video_codec", None)
    crop_text = getattr(args, "video_crop", None)
    if codec is None and crop_text is None:
        return rig
    crop: Any = rig.video.crop_px
    if crop_text is not None:
        try:
            crop = [int(v) for v in crop_text.split(",")]
        except ValueError:
            crop = crop_text
    codec = rig.video.codec if codec is None else codec
    crop = check_video_storage(
        codec, crop, codec_field="--video-codec", crop_field="--video-crop"
    )
    return dataclasses.replace(rig, video=VideoStorage(codec, crop))


def positive_int(text: str) -> int:
    """Argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: allowed a whole number ≥ 1")
    return value


def out_folder_problem(path: str | None, option: str) -> str | None:
    """Why ``path`` cannot be the output folder of ``option`` (None if it can): it,
    or the nearest existing folder above it, is an existing file."""
    if path is None:
        return None
    folder = Path(path)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if candidate.is_dir():
                return None
            where = "is" if candidate == folder else f"is inside {candidate}, which is"
            return (
                f"{option} {path} {where} an existing file; allowed: a folder "
                "(made if missing)"
            )
    return None


def board_url(args: argparse.Namespace, **sim_options: str) -> str:
    """The URL ``rig.open_rig`` takes for these arguments: ``--sim`` is the
    simulated rig in its own process, with ``sim_options`` (``neurorig sim``'s).

    >>> board_url(argparse.Namespace(sim=True, seed=4, port=None))
    'sim://?seed=4&process=own'
    """
    if args.sim:
        options = {"seed": str(args.seed), "process": "own", **sim_options}
        return "sim://?" + "&".join(f"{k}={v}" for k, v in options.items())
    return args.port


def fail(message: str) -> int:
    """Print an error for a person (no traceback) and return exit status 2."""
    print(f"neurorig: error: {message}", file=sys.stderr)
    return 2
