"""The closed-loop latency self-test: how long the loop takes on this host.

The loop measured is the one a closed-loop protocol runs: stimulate; the
board streams the response; the host's online analysis measures it; the
optimiser (Gaussian-process UCB) chooses the next stimulus; the host writes
the command. Each iteration waits for the response window to end on the
board's clock (onset + ``window_s``, at least the rig's minimum
inter-stimulus interval), then:

- **host part**: from the moment the batch holding the last sample of that
  window arrived at the host (reader thread) to the moment the next
  STIMULATE frame was handed to the serial port. It includes the relay to
  the consumers, the online analysis, the optimiser's decision, the safety
  checks and the encoding;
- **round trip through the board**: from that write to the board's
  acknowledgement (carrying the onset sample) arriving back at the host;
- **decision**: the optimiser's compute time alone.

``neurorig selftest latency`` measures the loop twice: alone, and with what a
real closed-loop run adds beside it (the camera at 60 fps with the optical
sync code, live segment tracking, the recorder writing samples, events and
lossless video), and reports both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LatencyReport:
    """Per-iteration latencies in seconds."""

    host_s: list[float] = field(default_factory=list)
    round_trip_s: list[float] = field(default_factory=list)
    decision_s: list[float] = field(default_factory=list)
    missed_responses: int = 0

    frames: int = 0  # camera frames received meanwhile (0: no camera)
    frames_tracked: int = 0  # of which tracked live
    # the deciding thread at a raised priority, as a closed loop's (None: unknown)
    priority_raised: bool | None = None

    @staticmethod
    def percentiles_ms(values: list[float]) -> dict[str, float]:
        """p50/p95/p99/max in milliseconds."""
        ms = np.asarray(values, dtype=float) * 1e3
        if ms.size == 0:
            return {k: float("nan") for k in ("p50", "p95", "p99", "max")}
        return {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        }

    def format(self) -> str:
        """A table for people."""
        rows = [
            ("host part (window received → next command written)", self.host_s),
            ("round trip through the board (write → ack)", self.round_trip_s),
            ("optimiser decision", self.decision_s),
        ]
        lines = [f"{'':52} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  (ms)"]
        for label, values in rows:
            p = self.percentiles_ms(values)
            lines.append(
                f"{label:52} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f} "
                f"{p['max']:8.2f}"
            )
        lines.append(
            f"{len(self.host_s)} iterations, {self.missed_responses} responses "
            "not measured in time"
        )
        if self.priority_raised is not None:
            lines.append(
                "decisions at a raised priority (nice −10)"
                if self.priority_raised
                else "decisions at the ordinary priority (raising it is not "
                "permitted here: root or CAP_SYS_NICE)"
            )
        return "\n".join(lines)


class _WindowWatch:
    """Acquisition consumer: host arrival time of the batch reaching a sample."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._target: int | None = None
        self._arrived: float | None = None

    def expect(self, sample: int) -> None:
        with self._cond:
            self._target, self._arrived = sample, None

    def consume(self, decoded: Any, host_time: float) -> None:
        end = max((first + len(b) for first, b in decoded.sample_blocks()), default=0)
        with self._cond:
            if self._target is not None and self._arrived is None:
                if end >= self._target:
                    self._arrived = host_time
                    self._cond.notify_all()

    def wait(self, timeout_s: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: self._arrived is not None, timeout_s)
            return self._arrived


def measure_loop_latency(
    session: Any, *, n: int = 200, window_s: float = 0.25, seed: int = 0
) -> LatencyReport:
    """Run ``n`` closed-loop iterations on a started, armed-able session."""
    from rig.closed_loop import BayesianSearch, Objective, ParameterSpace
    from rig.closed_loop.loop import raise_thread_priority, restore_thread_priority
    from rig.closed_loop.measures import response_value

    safety = session.limits
    if safety is not None:
        window_s = max(window_s, safety.min_inter_stimulus_interval_s * 1.1)
    search = BayesianSearch(ParameterSpace(), seed=seed)
    objective = Objective(measure="amplitude_uv_mean")
    results: dict[int, dict] = {}
    got = threading.Condition()

    def on_response(trial: int, result: dict) -> None:
        with got:
            results[int(result["stimulus_sample"])] = result
            got.notify_all()

    watch = _WindowWatch()
    session.acquisition.add_consumer(watch.consume)
    session.events.response_measured.connect(on_response)
    link = session.device.link
    report = LatencyReport()
    window = round(window_s * session.sample_rate_hz)
    frames0, tracked0 = _frame_counts(session)
    # This thread decides as a closed loop's runner thread does: raised where
    # permitted (rig.closed_loop.loop.raise_thread_priority).
    tid = threading.get_native_id()
    before = raise_thread_priority(tid)
    report.priority_raised = before is not None
    try:
        session.arm()
        t0 = time.perf_counter()
        point = search.propose()
        report.decision_s.append(time.perf_counter() - t0)
        arrived: float | None = None
        for _ in range(n):
            onset = session.stimulate(ParameterSpace.pulse(point))
            written, replied = _last_request(link, "Stimulate")
            if arrived is not None:
                report.host_s.append(written - arrived)
            report.round_trip_s.append(replied - written)
            watch.expect(onset + window)
            search.prepare()  # as a closed loop does while the response comes in
            arrived = watch.wait(window_s + 2.0)
            if arrived is None:
                raise TimeoutError("the stream stopped during the self-test")
            with got:
                if not got.wait_for(lambda onset=onset: onset in results, 0.5):
                    report.missed_responses += 1
                result = results.pop(onset, None)
            if result is not None:
                score = objective.score(
                    response_value(result, objective.measure), point
                )
                search.observe(point, score)
            t0 = time.perf_counter()
            point = search.propose()
            report.decision_s.append(time.perf_counter() - t0)
    finally:
        if before is not None:
            restore_thread_priority(tid, before)
        session.events.response_measured.disconnect(on_response)
        session.disarm()
    frames1, tracked1 = _frame_counts(session)
    report.frames, report.frames_tracked = frames1 - frames0, tracked1 - tracked0
    return report


def _frame_counts(session: Any) -> tuple[int, int]:
    """Camera frames read and frames tracked live so far."""
    read = session.camera.frames_read if session.camera is not None else 0
    tracked = session.tracking.frames_tracked if session.tracking is not None else 0
    return read, tracked


def _last_request(link: Any, name: str) -> tuple[float, float]:
    """(written, replied) monotonic times of the newest request of that type."""
    for kind, written, replied in reversed(link.request_log):
        if kind == name:
            return written, replied
    raise LookupError(f"no {name} request in the link's log")


@contextlib.contextmanager
def external_simulator(seed: int = 1, *, channels: int = 4, camera_socket=None):
    """The simulated rig in its own process (``neurorig sim``); yields its port.

    In a separate process the simulator does not compete with the host for
    Python's GIL, as a real board does not: the host's figures are its own.
    With ``camera_socket`` (a path) its camera streams there too (open it with
    ``rig.core.camera.open_camera(path)``). It stops on leaving the block, and
    by itself if this process dies (``rig.core.connect.SimulatorProcess``).
    """
    from rig.core.connect import SimulatorProcess

    options = {"seed": str(seed), "channels": str(channels)}
    if camera_socket is not None:
        options["camera-socket"] = str(camera_socket)
    with SimulatorProcess(options) as child:
        yield child.port


def open_loop_session(
    port: str,
    rig: Any = None,
    *,
    camera: str | None = None,
    record_to: str | Path | None = None,
) -> Any:
    """A started Session on ``port`` with the online analysis on; ``rig``: its
    RigDescription (default: the simulated rig's, as ``neurorig sim`` serves).

    ``camera``: a camera to run beside it (live tracking runs on it when the
    rig places the electrodes in the image); ``record_to``: a folder to record
    samples, events and video into, as a run does.
    """
    from rig.core.connect import open_rig, simulated_rig_description
    from rig.recording import RecordingWriter
    from rig.rig_file import RigDescription
    from rig.safety import default_safety_limits

    if rig is None:
        rig = simulated_rig_description(rig=RigDescription(default_safety_limits()))
    session = open_rig(port, rig=rig, camera=camera)
    try:
        session.start()
        if record_to is not None:
            writer = RecordingWriter.create(
                Path(record_to),
                n_channels=session.n_channels,
                sample_rate_hz=float(session.sample_rate_hz),
                metadata={"purpose": "closed-loop latency self-test"},
            )
            session.start_recording(writer)
    except BaseException:
        session.close()
        raise
    time.sleep(0.3)
    return session


def format_reports(alone: LatencyReport, loaded: LatencyReport | None) -> str:
    """Both measurements for people: the loop alone, and with the camera,
    live tracking and recording on (``loaded``; None: not measured)."""
    lines = ["the loop alone (no camera, no recording):", alone.format(), ""]
    lines.append("with the camera, live tracking and recording on:")
    if loaded is None:
        lines.append("not measured: no camera (give --camera)")
    else:
        lines.append(loaded.format())
        lines.append(
            f"{loaded.frames} camera frames meanwhile, {loaded.frames_tracked} "
            "tracked live"
        )
    return "\n".join(lines)
