"""What each remote command does to the session: the same calls as local use.

Every command goes through the Session (its ``Stimulator`` checks every pulse
against the rig's limits and the on-time budget; ``FailSafe`` refuses to arm or
run while an emergency stop holds) or through an ``Experiment``, exactly as the
GUI and ``neurorig run`` do. Nothing here talks to the device itself.

The local emergency stop always wins: an emergency stop pressed locally (the
GUI's Esc, a script's ``session.emergency_stop()``) can be released only
locally; ``reset`` from a remote client is refused while it holds. A remote
client may release an emergency stop that a remote client made, and a board or
host fault (as ``neurorig reset`` does).
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_bridge.stimulus import Polarity, StimPulse, parse_configuration
from rig.core.experiment import LEAD_IN_S, TAIL_S, Experiment, new_recording
from rig.core.runner import RunState
from rig.recording.metadata import software_version
from rig.remote.messages import COMMANDS, POLARITIES, PROTOCOL_VERSION

log = logging.getLogger(__name__)

ARMED_PHASES = (RunState.ARMED, RunState.RUNNING, RunState.PAUSED)
RUN_PHASES = (RunState.RUNNING, RunState.PAUSED, RunState.STOPPING)


class LocalStopHolds(RuntimeError):
    """A remote reset was refused: the emergency stop was pressed locally."""


class Commands:
    """The remote commands over one session; ``publish`` sends server events."""

    def __init__(
        self,
        session: Any,
        *,
        recordings_root: Callable[[], str | Path],
        publish: Callable[[str, dict[str, Any]], None],
        server_info: Callable[[], dict[str, Any]],
    ) -> None:
        self.session = session
        self._recordings_root = recordings_root
        self._publish = publish
        self._server_info = server_info
        self._protocols = Path(tempfile.mkdtemp(prefix="neurorig-remote-protocols-"))

    def close(self) -> None:
        """Remove received protocol files."""
        for path in self._protocols.glob("*"):
            path.unlink(missing_ok=True)
        self._protocols.rmdir()

    def handler(self, name: str) -> Callable[[dict[str, Any]], Any]:
        """The function that carries out command ``name``."""
        assert name in COMMANDS
        return getattr(self, f"do_{name}")

    def local_stop_holds(self) -> bool:
        """True while an emergency stop pressed locally has not been reset
        (the session is told who pressed each: ``emergency_stop(remote=...)``)."""
        return bool(self.session.local_stop_latched)

    # ------------------------------------------------------------ commands

    def do_hello(self, args: dict[str, Any]) -> dict[str, Any]:
        """Who the server is and where its events are published."""
        return {
            "server": "neurorig",
            "version": software_version(),
            "protocol_version": PROTOCOL_VERSION,
            "commands": list(COMMANDS),
            **self._server_info(),
        }

    def do_status(self, args: dict[str, Any]) -> dict[str, Any]:
        """The runner's state, arming, the latch, the recording, the link."""
        s = self.session
        status = s.runner.status
        writer = s.recorder.writer
        counters = s.acquisition.counters if s.acquisition is not None else None
        latched = bool(s.emergency_latched)
        return {
            "phase": status.phase.value,
            "trial": status.trial,
            "n_trials": status.n_trials,
            "finish_reason": status.finish_reason,
            "message": status.message,
            "armed": status.phase in ARMED_PHASES,
            "emergency_latched": latched,
            "emergency_stop_origin": (
                ("local" if self.local_stop_holds() else "remote") if latched else None
            ),
            "recording": None if writer is None else str(writer.folder),
            "last_recording_status": s.recording_status,
            "stimuli_delivered": len(s.stimuli),
            "faults": list(s.faults)[-10:],
            "limits": s.limits.to_dict() if s.limits is not None else None,
            "sample_rate_hz": s.sample_rate_hz,
            "n_channels": s.n_channels,
            "samples_received": counters.samples_received if counters else 0,
            "samples_lost": counters.samples_lost if counters else 0,
            "simulated": bool(getattr(s.rig, "simulated", False)),
        }

    def do_arm(self, args: dict[str, Any]) -> dict[str, Any]:
        """Arm (refused while an emergency stop or a fault holds)."""
        self.session.arm()
        return {"armed": True}

    def do_disarm(self, args: dict[str, Any]) -> dict[str, Any]:
        """Disarm (refused during a run: cancel or emergency_stop)."""
        self.session.disarm()
        return {"armed": False}

    def do_stimulate(self, args: dict[str, Any]) -> dict[str, Any]:
        """One pulse or train through the Stimulator (limits, on-time budget)."""
        self.session.fail_safe.refuse_if_latched("stimulate")
        cathode, anode = parse_configuration(args["configuration"])
        pulse = StimPulse(
            amplitude_vpp=args["amplitude_vpp"],
            duration_s=args["duration_s"],
            cathode=cathode,
            anode=anode,
            polarity=Polarity(POLARITIES.index(args["polarity"])),
            n_pulses=args["n_pulses"],
            rate_hz=args["rate_hz"],
        )
        return {"onset_sample": self.session.stimulate(pulse)}

    def do_run_protocol(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate a protocol (TOML text) against the limits and run it as an
        Experiment; ``record``: into a new recording of its own."""
        from rig.protocols import load_protocol

        session = self.session
        phase = session.runner.status.phase
        if phase in RUN_PHASES:
            raise RuntimeError(f"a run is in progress ({phase.value}): cancel it first")
        session.fail_safe.refuse_if_latched("run a protocol")
        if args["record"] and session.recorder.writer is not None:
            raise RuntimeError(
                f"already recording into {session.recorder.writer.folder}: give "
                "record=false to record the run there, or stop that recording first"
            )
        path = self._protocol_file(args["name"], args["protocol_toml"])
        protocol = load_protocol(path)  # errors name the file and the field
        record = args["record"]
        experiment = Experiment(
            session,
            protocol,
            out_root=self._recordings_root() if record else None,
            protocol_path=path,
            lead_in_s=LEAD_IN_S if record else 0.0,
            tail_s=TAIL_S if record else 0.0,
        )
        experiment.start()
        threading.Thread(
            target=self._report, args=(experiment,), name="remote-run", daemon=True
        ).start()
        return {
            "name": protocol.name,
            "n_trials": experiment.n_trials,
            "recording": None if experiment.folder is None else str(experiment.folder),
        }

    def do_cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stop the run at the next trial boundary (never mid-stimulus)."""
        self.session.runner.cancel()
        return {"phase": self.session.runner.status.phase.value}

    def do_start_recording(self, args: dict[str, Any]) -> dict[str, Any]:
        """A new recording folder under the server's recordings root."""
        session = self.session
        if session.recorder.writer is not None:
            raise RuntimeError(
                f"already recording into {session.recorder.writer.folder}"
            )
        writer = new_recording(session, self._recordings_root())
        session.start_recording(writer)
        return {"recording": str(writer.folder)}

    def do_stop_recording(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stop and close the recording (its status says how it ended)."""
        writer = self.session.stop_recording()
        if writer is None:
            return {"recording": None, "status": None}
        return {
            "recording": str(writer.folder),
            "status": self.session.recording_status,
        }

    def do_note(self, args: dict[str, Any]) -> dict[str, Any]:
        """A note in the recording's events (kept only while recording)."""
        recording = self.session.recorder.writer is not None
        self.session.record_event("note", text=args["text"], source="remote")
        return {"recorded": recording}

    def do_emergency_stop(self, args: dict[str, Any]) -> dict[str, Any]:
        """Disarm now and hold until reset (runs at once, never queued)."""
        self.session.emergency_stop(remote=True)
        return {"armed": False, "emergency_latched": True}

    def do_reset(self, args: dict[str, Any]) -> dict[str, Any]:
        """Release a remote emergency stop or a fault; never a local stop."""
        if self.local_stop_holds():
            raise LocalStopHolds(
                "the emergency stop was pressed locally: only a local reset releases "
                "it (the GUI's Reset button, Session.reset_fault on the rig's machine)"
            )
        self.session.reset_fault()
        self.session.record_event("reset", source="remote")
        return {"emergency_latched": bool(self.session.emergency_latched)}

    def do_ping_events(self, args: dict[str, Any]) -> dict[str, Any]:
        """Publish ``events_ping`` with the nonce: a subscriber that sees it knows
        its subscription is live (ZeroMQ subscriptions join asynchronously)."""
        self._publish("events_ping", {"nonce": args["nonce"]})
        return {}

    # ------------------------------------------------------------ helpers

    def _protocol_file(self, name: str, text: str) -> Path:
        """The received protocol as a file (the recording keeps a copy of it)."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).name).removesuffix(".toml")
        stem = stem.lstrip(".") or "remote"
        path, n = self._protocols / f"{stem}.toml", 1
        while path.exists():
            n += 1
            path = self._protocols / f"{stem}-{n}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def _report(self, experiment: Experiment) -> None:
        """When the run has ended (and its tail is recorded), say how."""
        result = experiment.wait()
        if result is None:
            return
        self._publish(
            "experiment_finished",
            {
                "recording": None if result.folder is None else str(result.folder),
                "status": result.status,
                "completed": result.completed,
                "stimuli_delivered": result.stimuli_delivered,
                "finish_reason": result.runner.finish_reason,
                "message": result.runner.message,
                "error": None if result.error is None else str(result.error),
            },
        )
