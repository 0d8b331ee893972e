"""``neurorig analyze``: offline analysis of a recording or a Spike Recorder WAV."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` sub-command."""
    parser = subparsers.add_parser(
        "analyze",
        help="analyse a recording (AP propagation, displacement, parameter maps)",
        description="Analyse a neurorig recording folder, or a Backyard Brains Spike "
        "Recorder NAME.wav + NAME-events.txt pair.",
    )
    parser.add_argument("path", help="recording folder or .wav file")
    parser.add_argument(
        "--electrode-positions-mm",
        help="comma-separated positions of the recording pairs along the body, mm "
        "(required for a WAV; overrides a recording's metadata)",
    )
    parser.add_argument(
        "--px-per-mm", type=_positive, help="camera scale, pixels per mm (> 0)"
    )
    parser.add_argument("--json", dest="json_out", help="write the results as JSON")
    parser.add_argument(
        "--pulse-duration-ms",
        type=_positive,
        default=None,
        help="stimulus pulse duration for a WAV's markers, ms: a hint (the pulse's "
        "true length is found in the data either way)",
    )
    parser.add_argument(
        "--stimulus-markers",
        metavar="ID[,ID]",
        help="which marker IDs of a WAV's events file are stimuli (default: every "
        "whole-number ID; others, e.g. spike-sorter lines, are ignored and counted)",
    )
    parser.add_argument(
        "--marker-map",
        metavar="FILE.toml",
        help='each marker ID\'s stimulus: [markers."1"] amplitude_vpp, duration_ms, '
        "pair (docs/analysis.md)",
    )
    parser.add_argument(
        "--mains-hz",
        type=float,
        choices=(50.0, 60.0),
        default=None,
        help="mains frequency for hum removal (default: 50 or 60, whichever fits)",
    )
    parser.add_argument(
        "--uv-per-count",
        type=float,
        default=1.0,
        help="µV per WAV sample unit (Spike Recorder stores raw units; default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--report", help="write an HTML report into this folder")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the offline pipeline."""
    from rig.analyze_command import run_analyze

    return run_analyze(args)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value
