"""Body of ``neurorig run``: validate a protocol, then dry-run or run and record it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rig.cli._common import (
    board_url,
    fail,
    out_folder_problem,
    with_video_options,
)


def _load(args: argparse.Namespace):
    from rig.cli._subject import describe_from_args
    from rig.protocols import ProtocolError, load_protocol
    from rig.rig_file import DEFAULT_CHANNELS, load_rig_file
    from rig.safety import SafetyError, check_protocol

    try:
        rig = load_rig_file(args.rig).with_positions_mm(
            args.electrode_positions_mm, DEFAULT_CHANNELS
        )
        rig = describe_from_args(args, rig)  # subject and session: options win
        rig = with_video_options(rig, args)  # --video-codec, --video-crop
        protocol = load_protocol(args.protocol)
    except (ProtocolError, SafetyError, OSError, ValueError) as exc:
        return None, None, None, str(exc)
    try:
        plan = check_protocol(  # None for a closed loop
            protocol, rig.limits, n_electrodes=rig.n_stim_electrodes
        )
    except SafetyError as exc:  # the protocol file's fault: named
        return None, None, None, f"{args.protocol}: {exc}"
    return protocol, plan, rig, None


def run_protocol_command(args: argparse.Namespace) -> int:
    """Validate PROTOCOL; with --dry-run print the plan, else run it and record."""
    from rig.protocols import format_closed_loop, format_plan

    protocol, plan, rig, error = _load(args)
    if error is not None:
        return fail(f"{error}\nNothing was sent to the board.")
    if args.dry_run:
        if plan is None:
            print(
                format_closed_loop(
                    protocol.name,
                    protocol.seed,
                    protocol.closed_loop,
                    load_ohm=rig.limits.load_ohm,
                    max_on_time_s_per_min=rig.limits.max_on_time_s_per_min,
                )
            )
        else:
            print(
                format_plan(
                    plan,
                    load_ohm=rig.limits.load_ohm,
                    max_on_time_s_per_min=rig.limits.max_on_time_s_per_min,
                )
            )
        return 0
    if not (args.sim or args.port):
        return fail("give --port PATH or --sim (or --dry-run to only print the plan)")
    problem = out_folder_problem(args.out, "--out")
    if problem is not None:
        return fail(f"{problem}\nNothing was sent to the board.")
    if getattr(args, "resume", None):
        from rig.core.resume import ResumeError, resume_plan

        try:  # before the board is opened
            resume_plan(args.resume, args.protocol, plan)
        except ResumeError as exc:
            return fail(f"{exc}\nNothing was sent to the board.")
    return _run(args, protocol, plan, rig)


def _print_closed_loop_summary(loop: Any) -> None:
    best = loop.search.recommendation()
    n = len(loop.search.observations.points)
    if best is not None and isinstance(best[0], str):  # over sites
        print(
            f"closed loop: best {loop.space.describe(best)}, recommended from "
            f"{n} observed stimuli"
        )
    elif best is not None:
        print(
            f"closed loop: best {best[0]:.3f} Vpp × {best[1] * 1e3:.3f} ms "
            f"(pair {best[2]}), recommended from {n} observed stimuli"
        )
    if loop.host_latency_s:
        ms = np.array(loop.host_latency_s) * 1e3
        print(
            f"closed loop host latency: p50 {np.percentile(ms, 50):.2f} ms, "
            f"max {ms.max():.2f} ms; {loop.missed_responses} responses missed, "
            f"{loop.late_responses} learnt from late; decisions at "
            + (
                "a raised priority (nice −10)"
                if loop.priority_raised
                else "the ordinary priority (raising it needs root or CAP_SYS_NICE)"
            )
        )


def _run(args, protocol, plan, rig) -> int:
    from tqdm import tqdm

    from calibration import CalibrationSet
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import open_rig
    from rig.core.experiment import Experiment
    from rig.rig_file import DEFAULT_CHANNELS

    calibrations = CalibrationSet.load(getattr(args, "calibrations", None))
    folder: list[Path] = []  # the recording's, once it exists
    try:
        session = open_rig(
            board_url(args),
            camera=args.camera,
            rig=rig,
            calibrations=calibrations,
            channels=DEFAULT_CHANNELS,
            # the simulated rig writes its truth beside the recording
            ground_truth_to=lambda: folder[0] / "ground_truth.json" if folder else None,
        )
    except (DeviceError, OSError, ValueError) as exc:
        return fail(f"cannot open the rig: {exc}")
    result = None
    try:
        session.start()
        for warning in session.setup_warnings():  # calibration ones go in metadata
            print(f"warning: {warning}", file=sys.stderr)
        # Refuses an objective this session cannot measure before recording.
        experiment = Experiment(
            session,
            protocol,
            out_root=args.out,
            protocol_path=args.protocol,
            resume_from=getattr(args, "resume", None),
        )
        if experiment.resumption is not None:
            print(
                f"resuming {experiment.resumption.recording} at trial "
                f"{experiment.resumption.first_trial} of {len(plan or [])}",
                file=sys.stderr,
            )
        bar = tqdm(
            total=experiment.n_trials, unit="stim", desc=protocol.name, file=sys.stdout
        )
        session.events.run_state_changed.connect(
            lambda status: (setattr(bar, "n", status.trial), bar.refresh())
        )
        experiment.start()
        assert experiment.folder is not None
        folder.append(experiment.folder)
        result = experiment.wait()
        bar.close()
        if experiment.loop is not None:
            _print_closed_loop_summary(experiment.loop)
    except ValueError as exc:  # a closed-loop objective this rig cannot measure
        error = str(exc)
    except DeviceError as exc:
        error = f"board: {exc}"
    else:
        error = None
    finally:
        counters = session.acquisition.counters if session.acquisition else None
        session.close()
        heartbeat = session.device.heartbeat_stats
    if error is not None or result is None:
        return fail(error or "the run did not end")
    summary = {
        "recording": str(result.folder),
        "status": result.status,
        "stimuli_delivered": result.stimuli_delivered,
        "samples_received": counters.samples_received if counters else 0,
        "samples_lost": counters.samples_lost if counters else 0,
        "faults": result.faults,
        # The host's own heartbeat (firmware_bridge._heartbeat): its longest
        # silence, gaps over 150 ms, beats withheld for a stalled reader.
        "heartbeat_max_gap_ms": round(heartbeat.max_gap_s * 1e3, 1),
        "heartbeats_late": heartbeat.late,
        "heartbeats_withheld": heartbeat.withheld,
        "heartbeat_realtime": heartbeat.realtime,
    }
    print(json.dumps(summary, indent=2))
    print(f"recording: {result.folder}")
    if result.ok:
        return 0
    why = result.error or result.runner.message or result.status
    print(f"neurorig: run ended {result.status}: {why}", file=sys.stderr)
    return 1
