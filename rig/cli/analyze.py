"""``neurorig analyze``: offline analysis of a recording or a Spike Recorder WAV."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rig.cli._batch import add_batch_arguments, batch_command
from rig.cli._common import fail, out_folder_problem


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` sub-command."""
    parser = subparsers.add_parser(
        "analyze",
        help="analyse a recording (AP propagation, displacement, parameter maps)",
        description="Analyse a neurorig recording folder, a Backyard Brains Spike "
        "Recorder NAME.wav + NAME-events.txt pair, or any file neo reads (Open Ephys, "
        "Intan .rhd/.rhs, Spike2 .smr, ABF, EDF, ...; needs neurorig[neo]) with an "
        "event channel as the stimuli.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="recording folder, .wav file, or a file or folder neo reads (or --batch DIR)",
    )
    parser.add_argument(
        "--electrode-positions-mm",
        help="comma-separated positions of the recording pairs along the body, mm "
        "(required for a WAV or a neo file; overrides a recording's metadata)",
    )
    parser.add_argument(
        "--px-per-mm", type=_positive, help="camera scale, pixels per mm (> 0)"
    )
    parser.add_argument("--json", dest="json_out", help="write the results as JSON")
    parser.add_argument(
        "--csv",
        dest="csv_out",
        metavar="OUT.csv",
        help="write a table: one row per stimulus and fibre (docs/analysis.md)",
    )
    parser.add_argument(
        "--mat",
        dest="mat_out",
        metavar="OUT.mat",
        help="write the results for MATLAB (a .mat file, loadable with load())",
    )
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
        help="which marker IDs of a WAV's events file, or labels of a neo file's "
        "stimulus channel, are stimuli (default for a WAV: every whole-number ID; "
        "for a neo file: every event; others are ignored and counted)",
    )
    parser.add_argument(
        "--stimulus-channel",
        metavar="NAME",
        help="a neo file's event channel that marks the stimuli (default: its only "
        "one, or one named 'stimuli' as neurorig's Open Ephys export names it)",
    )
    parser.add_argument(
        "--stream",
        metavar="NAME",
        help="a neo file's signal stream to analyse (default: its only one)",
    )
    parser.add_argument(
        "--channels",
        metavar="A,B,...",
        help="a neo file's recording channels, by name, id or index within the "
        "stream (default: all of it), one per --electrode-positions-mm value",
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
        type=_positive,
        default=1.0,
        help="µV per WAV sample unit, > 0 (Spike Recorder stores raw units; default 1)",
    )
    parser.add_argument(
        "--accept-unproven-alignment",
        action="store_true",
        help="measure motion even from frames whose trigger the optical sync "
        "did not prove (their samples come from arrival times, which a busy "
        "host gets wrong by whole frames); the results say so",
    )
    parser.add_argument(
        "--retrack",
        action="store_true",
        help="decode the video and track the segments again instead of using "
        "the tracking saved while recording (tracking.jsonl); without it the "
        "video is not opened when the recording has saved tracking",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--report", help="write an HTML report into this folder")
    add_batch_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the offline pipeline (on one PATH, or every recording of --batch DIR)."""
    if (args.path is None) == (args.batch is None):
        return fail("give PATH (one recording or WAV) or --batch DIR, not both")
    if args.batch is not None:
        return batch_command(args)
    return run_analyze(args)


def _progress_factory(enabled: bool):
    from tqdm import tqdm

    def progress(iterable, desc, total=None):
        if iterable is None:
            return tqdm(total=total, desc=desc, disable=not enabled, unit="stim")
        return tqdm(iterable, desc=desc, disable=not enabled, unit="frame")

    return progress


def run_analyze(args: argparse.Namespace) -> int:
    """Load, analyse, write JSON and report, print a summary."""
    from rig.offline.direction import PositionsContradicted
    from rig.offline.load import load_recording, load_wav
    from rig.offline.neo_input import NeoInputError, load_neo
    from rig.offline.pipeline import analyse
    from rig.offline.spike_recorder import SpikeRecorderError
    from rig.recording import RecordingFormatError

    path = Path(args.path)
    problem = out_folder_problem(args.report, "--report")
    for option, out in (("--json", args.json_out), ("--csv", args.csv_out),
                        ("--mat", args.mat_out)):  # fmt: skip
        if out and Path(out).is_dir():
            problem = f"{option} {out} is a folder; allowed: a file name"
    if problem is not None:  # before the analysis, not after it
        return fail(problem)
    try:
        if path.suffix.lower() == ".wav":
            source = load_wav(
                path,
                electrode_positions_mm=args.electrode_positions_mm,
                uv_per_count=args.uv_per_count,
                pulse_duration_ms=args.pulse_duration_ms,
                stimulus_markers=args.stimulus_markers,
                marker_map=args.marker_map,
            )
        elif path.is_dir() and (path / "metadata.json").exists():
            source = load_recording(
                path,
                electrode_positions_mm=args.electrode_positions_mm,
                px_per_mm=args.px_per_mm,
            )
        else:  # any other file or folder: a format neo reads
            source = load_neo(
                path,
                electrode_positions_mm=args.electrode_positions_mm,
                stimulus_channel=args.stimulus_channel,
                stimulus_markers=args.stimulus_markers,
                marker_map=args.marker_map,
                pulse_duration_ms=args.pulse_duration_ms,
                stream=args.stream,
                channels=args.channels,
            )
    except (ValueError, OSError, SpikeRecorderError, NeoInputError) as exc:
        return fail(str(exc))
    source.mains_hz = args.mains_hz
    try:
        results = analyse(
            source,
            _progress_factory(not args.quiet),
            accept_unproven_alignment=args.accept_unproven_alignment,
            retrack=args.retrack,
        )
    except (PositionsContradicted, RecordingFormatError, OSError) as exc:
        # (OSError: the saved tracking is read beside the analysis, see
        # rig.offline.load._read_beside: its file's errors come out here)
        return fail(str(exc))
    warning = alignment_warning(results)
    if warning:
        print(warning, file=sys.stderr)
    if args.json_out:
        # allow_nan=False: a NaN left anywhere is a bug, not invalid JSON on disk
        text = json.dumps(results, indent=1, allow_nan=False)
        Path(args.json_out).write_text(text + "\n")
    if args.csv_out or args.mat_out:
        from rig.offline.tables import write_csv, write_mat

        if args.csv_out:
            write_csv(results, Path(args.csv_out))
        if args.mat_out:
            write_mat(results, Path(args.mat_out))
    if args.report:
        from rig.offline.report import write_report

        index = write_report(results, source, Path(args.report))
        print(f"report: {index}")
    print(summary_line(results))
    return 0


def alignment_warning(results: dict[str, Any]) -> str | None:
    """One line on the console when motion was refused, or measured from
    frames whose alignment is unproven; None otherwise."""
    alignment = (results.get("motion") or {}).get("alignment")
    if not alignment or alignment["proven"]:
        return None
    if alignment["unproven_accepted"]:
        return (
            "warning: motion measured from frames whose alignment to the board's "
            f"clock is unproven ({alignment['reason']}); displacement times may "
            "be whole frames off"
        )
    return (
        f"motion not measured: {alignment['reason']}. Give "
        "--accept-unproven-alignment to measure it anyway (flagged in the results)"
    )


def summary_line(results: dict[str, Any]) -> str:
    """The CLI's closing line: stimuli, and each fibre's velocity or why not."""
    n = len(results["stimuli"])
    responded = sum(1 for r in results["stimuli"] if r.get("responded"))
    parts = []
    for name, label in (("mgf", "MGF"), ("lgf", "LGF")):
        f = results["fibres"][name]
        if f["determined"]:
            low, high = f["ci95"]
            parts.append(
                f"{label} {f['median']:.2f} m/s (95 % CI {low:.2f}–{high:.2f}, "
                f"{f['n']} sweeps)"
            )
        elif f["n"]:
            parts.append(f"{label} not determined ({f['reason']})")
        else:
            parts.append(f"{label} not recruited")
    return f"{n} stimuli, {responded} with a propagating AP; " + "; ".join(parts)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value
