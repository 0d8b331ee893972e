"""Body of ``neurorig run``: validate a protocol, then dry-run or run and record it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from rig.cli._common import board_url, fail, out_folder_problem

LEAD_IN_S = 0.5  # baseline recorded before the first stimulus
TAIL_S = 1.0  # recording continues this long after the last stimulus


def _load(args: argparse.Namespace):
    from rig.protocols import ProtocolError, load_protocol
    from rig.rig_file import DEFAULT_CHANNELS, load_rig_file
    from rig.safety import SafetyError, check_protocol

    try:
        rig = load_rig_file(args.rig).with_positions_mm(
            args.electrode_positions_mm, DEFAULT_CHANNELS
        )
        protocol = load_protocol(args.protocol)
        plan = check_protocol(protocol, rig.limits)  # None for a closed loop
    except (ProtocolError, SafetyError, OSError, ValueError) as exc:
        return None, None, None, str(exc)
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
                )
            )
        else:
            print(format_plan(plan, load_ohm=rig.limits.load_ohm))
        return 0
    if not (args.sim or args.port):
        return fail("give --port PATH or --sim (or --dry-run to only print the plan)")
    problem = out_folder_problem(args.out, "--out")
    if problem is not None:
        return fail(f"{problem}\nNothing was sent to the board.")
    return _run(args, protocol, plan, rig)


def _print_closed_loop_summary(loop: Any) -> None:
    best = loop.search.recommendation()
    if best is not None:
        print(
            f"closed loop: best {best[0]:.3f} Vpp × {best[1] * 1e3:.3f} ms "
            f"(pair {best[2]}), recommended from "
            f"{len(loop.search.observations.points)} observed stimuli"
        )
    if loop.host_latency_s:
        ms = np.array(loop.host_latency_s) * 1e3
        print(
            f"closed loop host latency: p50 {np.percentile(ms, 50):.2f} ms, "
            f"max {ms.max():.2f} ms; {loop.missed_responses} responses missed"
        )


def _run(args, protocol, plan, rig) -> int:
    from tqdm import tqdm

    from calibration import CalibrationSet
    from firmware_bridge.errors import DeviceError
    from rig.core.connect import open_rig
    from rig.recording import DiskFullError, RecordingWriter
    from rig.recording.metadata import build_metadata
    from rig.rig_file import DEFAULT_CHANNELS

    out = Path(args.out) / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    calibrations = CalibrationSet.load(getattr(args, "calibrations", None))
    try:
        session = open_rig(
            board_url(args),
            camera=args.camera,
            rig=rig,
            calibrations=calibrations,
            channels=DEFAULT_CHANNELS,
            ground_truth_path=out / "ground_truth.json",  # the simulated rig's
        )
    except (DeviceError, OSError, ValueError) as exc:
        return fail(f"cannot open the rig: {exc}")
    status = 0
    try:
        session.start()
        for warning in session.setup_warnings():  # calibration ones go in metadata
            print(f"warning: {warning}", file=sys.stderr)
        loop = None
        if plan is None:
            from rig.closed_loop.loop import ClosedLoop

            # Before recording: refuses an objective this session cannot measure.
            loop = ClosedLoop(session, protocol.closed_loop, seed=protocol.seed)
        metadata = build_metadata(session, protocol_path=args.protocol)
        writer = RecordingWriter.create(
            out,
            n_channels=session.n_channels,
            sample_rate_hz=session.sample_rate_hz,
            metadata=metadata,
        )
        writer.attach_file(Path(args.protocol).name, Path(args.protocol))
        session.start_recording(writer)
        done = threading.Event()
        n_trials = plan.n_trials if plan else protocol.closed_loop.n_stimuli
        bar = tqdm(total=n_trials, unit="stim", desc=protocol.name, file=sys.stdout)

        def on_status(st):
            bar.n = st.trial
            bar.refresh()
            if st.finish_reason is not None and st.phase.value in (
                "armed",
                "idle",
                "fault",
            ):
                done.set()

        session.events.run_state_changed.connect(on_status)
        time.sleep(LEAD_IN_S)  # a pre-stimulus baseline for the first trial
        if loop is not None:
            loop.start()
        else:
            session.run_protocol(plan.trials, n_trials=plan.n_trials)
        while not done.wait(0.2):
            if session.device.error is not None:
                break
        bar.close()
        if loop is not None:
            loop.finish()
            _print_closed_loop_summary(loop)
        # Keep recording after the last stimulus: its APs (ms) and its twitch
        # (peak ~0.3 s, relaxing for seconds) belong to the run.
        time.sleep(TAIL_S)
        final = session.runner.status
        if final.finish_reason is None or final.finish_reason.value != "completed":
            print(f"run ended: {final.phase.value} {final.message}", file=sys.stderr)
            status = 1
    except DiskFullError as exc:
        status = fail(str(exc))
    except ValueError as exc:  # a closed-loop objective this rig cannot measure
        status = fail(str(exc))
    except DeviceError as exc:
        status = fail(f"board: {exc}")
    finally:
        counters = session.acquisition.counters if session.acquisition else None
        session.close()
    if not out.exists():  # refused before recording began: nothing to point at
        return status
    summary = {
        "recording": str(out),
        "stimuli_delivered": len(session.stimuli),
        "samples_received": counters.samples_received if counters else 0,
        "samples_lost": counters.samples_lost if counters else 0,
        "faults": session.faults,
    }
    print(json.dumps(summary, indent=2))
    print(f"recording: {out}")
    return status
