"""An experiment: run one protocol on a started session and record it.

The one way "run this protocol file and record it" is done, by ``neurorig run``,
the GUI and scripts::

    experiment = Experiment(session, protocol, out_root="runs", protocol_path=path)
    experiment.start()                  # a new recording, a baseline, the run
    result = experiment.wait()          # the run ended, the tail recorded, closed
    print(result.folder, result.status)

The recording starts ``lead_in_s`` before the first stimulus (a pre-stimulus
baseline) and goes on ``tail_s`` after the last (its APs and its twitch belong
to the run). A closed-loop protocol gets its ``ClosedLoop`` here, before
anything is recorded, so an objective the session cannot measure is refused
first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.core.resume import resume_plan
from rig.core.runner import FinishReason, RunnerStatus, RunState
from rig.recording import RecordingWriter
from rig.recording.metadata import build_metadata
from rig.safety import check_protocol

LEAD_IN_S = 0.5  # baseline recorded before the first stimulus
TAIL_S = 1.0  # recording continues this long after the last stimulus


def new_recording(
    session: Any,
    out_root: str | Path,
    *,
    protocol_path: str | Path | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> RecordingWriter:
    """A recording of ``session`` in a new timestamped folder under ``out_root``
    (``-2``, ``-3``… when one of that second exists), with its metadata and the
    protocol file attached."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(out_root)
    folder, n = root / stamp, 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{n}"
    writer = RecordingWriter.create(
        folder,
        n_channels=session.n_channels,
        sample_rate_hz=session.sample_rate_hz,
        metadata={
            **build_metadata(
                session,
                protocol_path=None if protocol_path is None else str(protocol_path),
            ),
            **(extra_metadata or {}),
        },
        video=session.rig.video,  # the rig file's [video], or the CLI's
    )
    if protocol_path is not None:
        writer.attach_file(Path(protocol_path).name, Path(protocol_path))
    return writer


@dataclass
class ExperimentResult:
    """How an experiment ended."""

    folder: Path | None  # the recording (None when it recorded into another)
    status: str  # the recording's status: completed, cancelled, fault:<NAME>, …
    runner: RunnerStatus
    stimuli_delivered: int
    faults: list[str] = field(default_factory=list)
    completed: bool = False  # every trial delivered (the run itself completed)
    error: Exception | None = None  # why the run could not start

    @property
    def ok(self) -> bool:
        """Every trial delivered and the recording ended as it should."""
        return self.completed and self.status == "completed"


class Experiment:
    """One protocol run on a started session, recorded into its own folder."""

    def __init__(
        self,
        session: Any,
        protocol: Any,
        *,
        out_root: str | Path | None,
        protocol_path: str | Path | None = None,
        lead_in_s: float = LEAD_IN_S,
        tail_s: float = TAIL_S,
        require_approval: bool = False,
        resume_from: str | Path | None = None,
    ) -> None:
        """``out_root``: where the new recording goes; None records nothing new
        (into the session's recording, if any). Raises ValueError (named
        field) for a protocol the rig's limits refuse or a closed-loop
        objective this session cannot measure, before anything is recorded.
        ``resume_from``: a recording of this protocol that stopped early: run
        only the trials it did not deliver (rig.core.resume; needs
        ``protocol_path``)."""
        self.session = session
        self.protocol = protocol
        self.plan = check_protocol(  # None: closed loop
            protocol, session.limits, n_electrodes=session.stimulator.n_electrodes
        )
        self.resumption = None
        if resume_from is not None:
            if protocol_path is None:
                raise ValueError("resume_from needs protocol_path (to compare them)")
            self.resumption = resume_plan(resume_from, protocol_path, self.plan)
            self.plan = dataclasses.replace(self.plan, trials=self.resumption.trials)
        self.out_root, self.protocol_path = out_root, protocol_path
        self.lead_in_s, self.tail_s = lead_in_s, tail_s
        self.loop: Any = None
        if self.plan is None:
            from rig.closed_loop.loop import ClosedLoop

            self.loop = ClosedLoop(
                session,
                protocol.closed_loop,
                seed=protocol.seed,
                require_approval=require_approval,
            )
        self.n_trials = (
            self.plan.n_trials if self.plan else protocol.closed_loop.n_stimuli
        )
        # A train's last pulses come after its command: wait them out too.
        trains_s = (
            [t.pulse.train_length_s() for t in self.plan.trials] if self.plan else []
        )
        self.tail_s += max(trains_s, default=0.0)
        self.folder: Path | None = None
        self._result: ExperimentResult | None = None
        self.error: Exception | None = None  # why the run could not start
        self._began = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start recording, then (after the lead-in) the run; returns at once.
        Without a lead-in the run starts here, so a refusal (an emergency stop
        not reset, a fault) raises here."""
        if self.out_root is not None:
            resumed = self.resumption
            writer = new_recording(
                self.session,
                self.out_root,
                protocol_path=self.protocol_path,
                extra_metadata={"resumed_from": resumed.metadata()}
                if resumed
                else None,
            )
            self.folder = writer.folder
            self.session.start_recording(writer)
        elif self.protocol_path is not None and self.session.recorder.writer:
            # Run inside a recording made elsewhere (the GUI's): it keeps the
            # protocol too, and when it began.
            path = Path(self.protocol_path)
            self.session.recorder.attach_protocol(path)
            self.session.record_event(
                "protocol_started", protocol_file=path.name, name=self.protocol.name
            )
            if self.resumption is not None:  # linked as the CLI's --resume links it
                self.session.recorder.writer.update_metadata(
                    resumed_from=self.resumption.metadata()
                )
        if self.lead_in_s <= 0:
            try:
                self._begin_run()
            except BaseException:
                if self.out_root is not None:
                    self.session.stop_recording()
                raise
        self._thread = threading.Thread(
            target=self._run, name="experiment", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        """Stop at the next trial boundary (or before the first); the tail is
        still recorded."""
        self._stop.set()
        self.session.runner.cancel()

    def wait(self, timeout_s: float | None = None) -> ExperimentResult | None:
        """Block until the experiment ended (None if ``timeout_s`` passed)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._result

    # ------------------------------------------------------------ internals

    def _begin_run(self) -> None:
        self._began = True
        if self.loop is not None:
            self.loop.start()
        else:
            self.session.run_protocol(self.plan.trials, n_trials=self.plan.n_trials)

    def _run(self) -> None:
        session = self.session
        try:
            if not self._began and not self._stop.wait(self.lead_in_s):
                self._begin_run()
            if self._began:  # the runner's thread ends with the run (or a fault)
                session.runner.wait()
            if session.runner.status.phase != RunState.FAULT:
                threading.Event().wait(self.tail_s)
        except Exception as exc:  # refused to arm (an emergency stop held), …
            self.error = exc
            session.record_event("experiment_refused", reason=str(exc))
        finally:
            if self.loop is not None:
                self.loop.finish()
            self._finish()

    def _finish(self) -> None:
        session = self.session
        status = None
        if self.out_root is not None:
            session.stop_recording()
            status = session.recording_status
        runner = session.runner.status
        ran = self._began and self.error is None
        self._result = ExperimentResult(
            folder=self.folder,
            status=status or session.fail_safe.outcome or "completed",
            runner=runner,
            stimuli_delivered=len(session.stimuli),
            faults=list(session.faults),
            completed=ran and runner.finish_reason == FinishReason.COMPLETED,
            error=self.error,
        )
