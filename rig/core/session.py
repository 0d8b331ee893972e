"""Session: the headless core that the GUI, scripts and the CLI all drive.

A Session owns the device, the acquisition (ring + relay thread), the camera, the
recorder, the protocol runner and the host-side safety limits. Everything the GUI
can do, a script can do through these methods::

    with Session.open("sim://?seed=3", camera="sim") as s:
        s.start()
        s.start_recording("runs/today")
        s.arm()
        s.stimulate(StimPulse(amplitude_vpp=4.0, duration_s=3e-3))
        s.run_protocol(plan, wait=True)

Threads: the serial reader (firmware_bridge.link) fills the ring; the relay
thread (Acquisition) writes to disk and emits events; the runner thread delivers
trials; the camera thread delivers frames. Methods may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import Any

import numpy as np

from firmware_bridge.device import Device
from firmware_bridge.errors import DeviceError
from firmware_bridge.protocol import (
    CameraTriggered,
    Decoded,
    Fault,
    FaultCode,
    LedFlashed,
    Log,
    StimDelivered,
    StreamAnomaly,
)
from firmware_bridge.protocol.messages import Boot
from firmware_bridge.stimulus import StimPulse
from rig.core._events import RigEvents
from rig.core.acquisition import Acquisition
from rig.core.frame_clock import FrameClock
from rig.core.live_tracking import LiveTracking
from rig.core.online_analysis import OnlineResponses
from rig.core.online_motion import OnlineMotion
from rig.core.realtime import tune_for_streaming
from rig.core.runner import ProtocolRunner, RunnerStatus, RunState
from rig.recording import DiskFullError, RecordingStopped
from rig.rig_file import DEFAULT_CHANNELS
from rig.safety import OnTimeBudget, SafetyLimits

log = logging.getLogger(__name__)

FRAME_HISTORY_S = 60.0  # camera/trigger history kept while not recording


def _fault_name(code: int) -> str:
    try:
        return FaultCode(code).name
    except ValueError:
        return f"fault {code}"


def _fault_latches(code: int) -> bool:
    try:
        return FaultCode(code).latches
    except ValueError:
        return True  # an unknown fault is treated as serious


class EmergencyStopHeld(RuntimeError):
    """Arming or running was refused: an emergency stop has not been reset."""


class _BoardActions:
    """What the runner may do to the board: arm, disarm, deliver a checked pulse."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def arm(self) -> None:
        self._session.device.arm()

    def disarm(self) -> None:
        self._session.device.disarm()

    def stimulate(self, pulse: StimPulse) -> int:
        return self._session.stimulate(pulse)


class Session:
    """One rig: device + acquisition + camera + recorder + runner + safety."""

    def __init__(
        self,
        device: Device,
        *,
        sample_rate_hz: int = 30_000,
        channels: int = DEFAULT_CHANNELS,
        gain: int = 1000,
        camera: Any = None,
        camera_rate_hz: float = 60.0,
        safety: SafetyLimits | None = None,
        ring_seconds: float = 60.0,
        positions_m: Any = None,
        calibrations: Any = None,
        geometry: dict[str, Any] | None = None,
    ) -> None:
        self.device = device
        self.events = RigEvents()
        self.sample_rate_hz = sample_rate_hz
        self.n_channels = channels
        self.gain = gain
        self.camera = camera
        self.camera_rate_hz = camera_rate_hz
        self.safety = safety
        self.on_time = OnTimeBudget(safety.max_on_time_s_per_min) if safety else None
        self.ring_seconds = ring_seconds
        self.frame_clock = FrameClock(sample_rate_hz)
        self.acquisition: Acquisition | None = None
        self.online: OnlineResponses | None = None
        # A real rig's geometry, from its rig file (rig.rig_file): electrode
        # positions, head on the raceway, the raceway in the image. The
        # simulated rig knows its own.
        self.geometry = geometry
        rig_geometry = getattr(getattr(device, "sim_rig", None), "model", None)
        if positions_m is None and rig_geometry is not None:
            positions_m = rig_geometry.geometry.pair_centres_m()[:channels]
        if positions_m is None and geometry and geometry.get("pair_centres_m"):
            positions_m = np.asarray(geometry["pair_centres_m"], dtype=float)
            if len(positions_m) != channels:
                raise ValueError(
                    f"{geometry.get('source', 'the rig file')} gives "
                    f"{len(positions_m)} electrode positions for {channels} channels"
                )
        self.positions_m = positions_m  # recording-pair centres along the body
        # Calibrations in force (calibration.CalibrationSet): gain for µV,
        # stimulator correction on every command, timing offset on frame stamps.
        self.calibrations = calibrations
        self._requested: dict[int, float] = {}  # commanded mVpp -> requested Vpp
        # listener(frame, host_time, frame_clock_index), on the camera thread
        self.frame_listeners: list = []
        # listener(trial, onset_sample), on the runner thread after each stimulus
        self.trial_listeners: list = []
        self.tracking: LiveTracking | None = None  # set up by start() with a camera
        self.motion: OnlineMotion | None = None  # per-stimulus twitch, with tracking
        self.recorder: Any = None
        self._recorder_lock = threading.Lock()
        self.runner = ProtocolRunner(
            _BoardActions(self), on_status=self._on_run_status, on_trial=self._on_trial
        )
        self.stimuli: list[dict[str, Any]] = []  # delivered, as STIM_DELIVERED said
        self.faults: list[str] = []
        # An emergency stop holds until someone resets it: no arm, no run.
        self.emergency_latched = False
        self._failed_writer: Any = None
        self._recorded_frames: list[int] = []  # frame-clock indices being recorded
        self.latest_frame: tuple[Any, float] | None = None
        self._frame_queue: queue.Queue = queue.Queue()
        self._frame_writer = threading.Thread(
            target=self._frame_writer_loop, name="frame-writer", daemon=True
        )
        self._frame_writer.start()
        self._recording_first_sample: int | None = None
        # Frame history is pruned to the last FRAME_HISTORY_S while nothing
        # needs more; a recording pins it from its start until its frame table
        # is written.
        self._frame_history_pinned = False
        self.frame_history_s = FRAME_HISTORY_S
        self._last_prune_s = 0.0
        self._armed = False
        self._closed = False
        device.add_error_listener(self._on_link_error)

    # ----------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, url: str, **kwargs: Any) -> Session:
        """Open the board at ``url`` (a port path or ``sim://...``) and wrap it."""
        return cls(Device.open(url), **kwargs)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Configure the board, start streaming and camera triggers."""
        tune_for_streaming()  # the reader thread must keep up with the board
        self.device.configure(
            sample_rate_hz=self.sample_rate_hz, channels=self.n_channels, gain=self.gain
        )
        self.acquisition = Acquisition(
            self.device, self.n_channels, ring_seconds=self.ring_seconds
        )
        self.acquisition.add_consumer(self._consume)
        if self.positions_m is not None and self.device.info is not None:
            self.online = OnlineResponses(
                fs_hz=self.sample_rate_hz,
                n_channels=self.n_channels,
                positions_m=self.positions_m,
                uv_per_count=self.uv_per_count(),
                emit=self.events.response_measured.emit,
                requested_vpp=self.requested_vpp,
            )
            self.acquisition.add_consumer(self.online.consume)
        if self.camera is not None:
            self.tracking = self._live_tracking()
        if self.tracking is not None:
            self.motion = OnlineMotion(
                self.tracking,
                fs_hz=self.sample_rate_hz,
                emit=self.events.motion_measured.emit,
                requested_vpp=self.requested_vpp,
            )
            self.acquisition.add_consumer(self.motion.consume)
        self.device.start_stream()
        if self.camera is not None:
            self.camera.start(self._on_frame)
            self.device.set_camera_trigger(self.camera_rate_hz)

    def stop(self) -> None:
        """Stop the camera and streaming; drain what arrived."""
        if self.device.error is None:
            try:
                if self.camera is not None:
                    self.device.set_camera_trigger(0)
                self.device.stop_stream()
            except DeviceError as exc:
                log.warning("stopping the stream: %s", exc)
        if self.camera is not None:
            self.camera.stop()
        if self.tracking is not None:
            self.tracking.close()
        if self.acquisition is not None:
            self.acquisition.drain()

    def close(self) -> None:
        """Disarm, stop, close the recording and the device (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.runner.status.phase in (RunState.RUNNING, RunState.PAUSED):
                self.runner.cancel()
                self.runner.wait(5.0)
            if self.device.error is None:
                self.device.disarm()
        except DeviceError:
            pass
        self.stop()
        self.stop_recording()
        self._frame_queue.put(None)
        if self.acquisition is not None:
            self.acquisition.close()
        self.device.close()

    # ------------------------------------------------------------ stimulation

    def arm(self) -> None:
        """Arm the board (stimulation allowed); refused while an emergency stop
        holds (``reset_fault`` releases it)."""
        self._refuse_if_latched("arm")
        self.runner.arm()

    def disarm(self) -> None:
        """Disarm the board."""
        self.runner.disarm()

    def emergency_stop(self) -> None:
        """Disarm now, from any thread, and stop any run; it holds (no arm, no
        run) until ``reset_fault``, and is recorded if recording."""
        self.emergency_latched = True
        try:
            self.runner.emergency_stop()
        finally:
            self.record_event("emergency_stop")

    def reset_fault(self) -> None:
        """Clear a latched board fault and a held emergency stop; the board
        stays disarmed."""
        self.device.reset_fault()
        self.runner.reset_fault()
        self.emergency_latched = False

    def _refuse_if_latched(self, what: str) -> None:
        if self.emergency_latched:
            raise EmergencyStopHeld(
                f"cannot {what}: the emergency stop holds until it is reset "
                "(Session.reset_fault, neurorig reset)"
            )

    def uv_per_count(self) -> Any:
        """µV per count per channel: the gain calibration's, else the board's nominal."""
        gain = self._calibration("gain")
        if gain is not None and len(gain.uv_per_count) == self.n_channels:
            return np.asarray(gain.uv_per_count)
        info = self.device.info
        assert info is not None  # samples to scale come from a connected board
        return info.volts_per_count(self.gain) * 1e6

    def requested_vpp(self, commanded_mvpp: int) -> float:
        """The amplitude asked for that became this command (after correction)."""
        return self._requested.get(commanded_mvpp, commanded_mvpp / 1000.0)

    def _live_tracking(self) -> LiveTracking | None:
        """Tracking for the camera view, where the camera's scale is known."""
        if self.positions_m is None:  # no regions to measure
            return None
        rig = getattr(self.device, "sim_rig", None)
        if rig is not None:
            camera = rig.geometry_dict()["camera"]
            head_m = rig.model.geometry.head_on_raceway_m
        elif self.geometry and self.geometry.get("camera"):
            # A real rig: the raceway's origin in the image comes from its rig file.
            camera = self.geometry["camera"]
            head_m = self.geometry.get("head_on_raceway_m", 0.0)
        else:
            return None
        px_per_mm = camera.get("px_per_mm")
        lens = None
        calibrated = self._calibration("camera")
        if calibrated is not None:
            px_per_mm = calibrated.px_per_mm
            lens = {
                "camera_matrix": calibrated.camera_matrix,
                "dist_coeffs": calibrated.dist_coeffs,
            }
        if not px_per_mm:
            log.warning("no live tracking: no px/mm (camera calibration or rig file)")
            return None
        return LiveTracking(
            px_per_mm=px_per_mm,
            origin_px=camera["origin_px"][0],
            region_centres_mm=(head_m + np.asarray(self.positions_m)) * 1000,
            sample_rate_hz=self.sample_rate_hz,
            lens=lens,
        )

    def setup_warnings(self) -> list[str]:
        """What this session cannot do for want of a calibration or the rig file
        (after ``start``): shown in the GUI's status bar and by ``neurorig run``."""
        warnings = list(getattr(self.calibrations, "warnings", []))
        if self.positions_m is None:
            warnings.append(
                "no electrode positions (rig file [electrodes] or "
                "--electrode-positions-mm): no online analysis or closed loop"
            )
        if self.camera is not None and self.tracking is None:
            warnings.append(
                "no live segment tracking: the rig file's [camera] places the "
                "raceway in the image"
            )
        return warnings

    def _calibration(self, kind: str) -> Any:
        return self.calibrations.get(kind) if self.calibrations is not None else None

    def stimulate(self, pulse: StimPulse) -> int:
        """Check ``pulse`` against the safety limits, deliver it, return its onset.

        With a stimulator calibration, the command is corrected so that the
        electrodes receive the requested amplitude; both are checked.
        """
        now = time.monotonic()
        if self.safety is not None and self.on_time is not None:
            self.safety.check(pulse)
            self.on_time.check(pulse, now)
        command = pulse
        stimulator = self._calibration("stimulator")
        if stimulator is not None:
            command = dataclasses.replace(
                pulse, amplitude_vpp=stimulator.command_for(pulse.amplitude_vpp)
            )
            if self.safety is not None:
                self.safety.check(command)
            self._requested[round(command.amplitude_vpp * 1000)] = pulse.amplitude_vpp
        onset = self.device.stimulate(command)
        if self.on_time is not None:
            self.on_time.record(pulse, now)
        return onset

    def run_protocol(self, trials: Any, *, n_trials: int = 0, wait: bool = False):
        """Run a plan (iterable of trials) or a closed-loop chooser; arms if
        needed, never after an emergency stop that has not been reset."""
        self._refuse_if_latched("run a protocol")
        if self.runner.status.phase == RunState.IDLE:
            self.runner.arm()
        if not n_trials and hasattr(trials, "__len__"):
            n_trials = len(trials)
        self.runner.start(trials, n_trials=n_trials)
        if wait:
            return self.runner.wait()
        return self.runner.status

    # ------------------------------------------------------------ recording

    def start_recording(self, writer: Any) -> None:
        """Record everything from now on into ``writer`` (a RecordingWriter)."""
        with self._recorder_lock:
            self.recorder = writer
            self._frame_history_pinned = True
            self._recorded_frames = []
            ring = self.acquisition.ring if self.acquisition else None
            self._recording_first_sample = ring.end if ring else None
        self.events.recording_changed.emit(str(getattr(writer, "folder", "")))

    def stop_recording(self) -> Any:
        """Stop recording; write the frame table; close and return the writer."""
        if self.acquisition is not None:
            self.acquisition.drain()
        with self._recorder_lock:
            writer, self.recorder = self.recorder, None
        self._frame_queue.join()  # every frame handed over is written
        with self._recorder_lock:
            if writer is None:
                writer, self._failed_writer = self._failed_writer, None
                self._frame_history_pinned = False
                if writer is not None:
                    writer.close("truncated")
                return writer
        self._write_frame_table(writer)
        self._frame_history_pinned = False
        writer.close("complete")
        self.events.recording_changed.emit(None)
        return writer

    # ------------------------------------------------------------ callbacks

    def _consume(self, decoded: Decoded, host_time: float) -> None:
        """Relay thread: record the batch and turn messages into events."""
        if self.acquisition is not None and self.acquisition.ring.end is not None:
            self.frame_clock.add_progress(host_time, self.acquisition.ring.end)
        if host_time - self._last_prune_s > self.frame_history_s / 6:
            self._last_prune_s = host_time
            if not self._frame_history_pinned:  # all day: memory stays flat
                self.frame_clock.forget_before(host_time - self.frame_history_s)
        with self._recorder_lock:
            writer = self.recorder
        if writer is not None:
            samples = decoded.samples
            for first, row, n in decoded.blocks:
                self._record_safely(
                    writer, "append_samples", int(first), samples[row : row + n]
                )
            for first, n_lost in decoded.gaps:
                self._record_safely(writer, "append_gap", int(first), int(n_lost))
            with self._recorder_lock:
                writer = self.recorder  # None if the disk just filled
        for message in decoded.messages:
            self._on_message(message, host_time, writer)

    def _on_message(self, message: Any, host_time: float, writer: Any) -> None:
        if isinstance(message, StimDelivered):
            fields = {
                "amplitude_vpp": message.delivered_mvpp / 1000.0,
                "commanded_vpp": message.commanded_mvpp / 1000.0,
                "requested_vpp": self.requested_vpp(message.commanded_mvpp),
                "duration_s": message.duration_us / 1e6,
                "pair": message.pair,
                "polarity": message.polarity,
                "pulse_index": message.pulse_index,
            }
            self.stimuli.append({"sample": message.sample_index, **fields})
            if writer is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    message.sample_index,
                    "stim_delivered",
                    **fields,
                )
            self.events.stim_delivered.emit(message.sample_index, fields)
        elif isinstance(message, CameraTriggered):
            self.frame_clock.add_trigger(
                message.sample_index, message.trigger_count, host_time
            )
            if writer is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    message.sample_index,
                    "camera_trigger",
                    trigger_count=message.trigger_count,
                )
        elif isinstance(message, Fault):
            text = f"board fault {_fault_name(message.code)}: {message.message}"
            self.faults.append(text)
            if writer is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    message.sample_index,
                    "fault",
                    code=_fault_name(message.code),
                    message=message.message,
                )
            self.events.fault_raised.emit(text)
            if _fault_latches(message.code):
                self.runner.fault(text)
        elif isinstance(message, LedFlashed):
            if writer is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    message.sample_index,
                    "led",
                    duration_s=message.duration_us / 1e6,
                )
        elif isinstance(message, Boot):
            text = "the board rebooted: its sample counter restarted"
            self.faults.append(text)
            if writer is not None and self.acquisition is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    self.acquisition.ring.end or 0,
                    "board_rebooted",
                    host_time=host_time,
                )
            self.events.fault_raised.emit(text)
            self.runner.fault(text)
        elif isinstance(message, StreamAnomaly):  # dropped by the decoder
            text = f"link: {message.message}"
            self.faults.append(text)
            if writer is not None:
                self._record_safely(
                    writer,
                    "append_event",
                    message.sample_index,
                    "stream_anomaly",
                    anomaly=message.kind,
                    claimed_sample=message.claimed_index,
                    n_samples=message.n_samples,
                    message=message.message,
                )
            self.events.fault_raised.emit(text)
        elif isinstance(message, Log) and writer is not None:
            self._record_safely(
                writer,
                "append_event",
                message.sample_index,
                "log",
                level=message.level,
                message=message.message,
            )

    def _on_frame(self, frame: Any, host_time: float) -> None:
        """Camera thread: count the frame; the frame writer thread records it."""
        index = self.frame_clock.add_frame(host_time)
        self.latest_frame = (frame, host_time)
        try:
            for listener in list(self.frame_listeners):
                listener(frame, host_time, index)
            if self.tracking is not None:
                trigger = self.frame_clock.latest_trigger()
                self.tracking.submit(frame, None if trigger is None else trigger[0])
        except Exception as exc:  # never lose the frame (or the camera) to a viewer
            log.warning("frame listener failed on frame %d: %s", index, exc)
        with self._recorder_lock:
            writer = self.recorder
            if writer is not None:
                self._recorded_frames.append(index)
        if writer is not None:
            self._frame_queue.put((writer, frame, host_time))

    def _frame_writer_loop(self) -> None:
        """Encode and write frames off the camera thread (video encoding is slow)."""
        while True:
            item = self._frame_queue.get()
            if item is None:
                return
            writer, frame, host_time = item
            try:
                self._record_safely(writer, "append_frame", frame, None, host_time)
            except Exception as exc:  # keep the thread alive; report it
                log.exception("writing a frame failed")
                self.events.error_occurred.emit(exc)
            finally:
                self._frame_queue.task_done()

    def _write_frame_table(self, writer: Any) -> None:
        """Stamp the recorded frames on the device clock and report drops."""
        stamps, report = self.frame_clock.match()
        by_index = {st.frame_index: st for st in stamps}
        recorded = [by_index[i] for i in self._recorded_frames if i in by_index]
        timing = self._calibration("timing")
        offset = round(timing.offset_samples) if timing is not None else 0
        rows = [
            (
                k,
                None if st.sample is None else st.sample + offset,
                st.source,
                st.trigger_count,
            )
            for k, st in enumerate(recorded)
        ]
        try:
            writer.write_frame_samples(rows)
        except (DiskFullError, RecordingStopped) as exc:
            log.warning("frame table not written: %s", exc)
        by_count = {c: smp for smp, c, _ in self.frame_clock.triggers()}
        start = self._recording_first_sample or 0
        dropped = [c for c in report.dropped_triggers if by_count.get(c, -1) >= start]
        self._record_safely(
            writer,
            "append_event",
            recorded[-1].sample if recorded and recorded[-1].sample else start,
            "frame_report",
            n_frames=len(recorded),
            n_triggers=sum(1 for smp in by_count.values() if smp >= start),
            dropped_triggers=dropped,
            extra_frames=[k for k, st in enumerate(recorded) if st.sample is None],
            timing_source="trigger" if report.n_triggers else "host-clock",
            latency_s=report.latency_s,
        )

    def _record_safely(self, writer: Any, method: str, *args: Any, **kw: Any) -> None:
        """Call a writer method; a full disk stops the recording, not acquisition."""
        try:
            getattr(writer, method)(*args, **kw)
        except (DiskFullError, RecordingStopped) as exc:
            with self._recorder_lock:
                if self.recorder is writer:
                    self.recorder = None
                    self._failed_writer = writer
                    self.faults.append(str(exc))
                    self.events.error_occurred.emit(exc)
                    self.events.recording_changed.emit(None)

    def record_event(self, kind: str, sample: int | None = None, **fields: Any) -> None:
        """Add an event to the recording (if recording), at ``sample`` or now."""
        with self._recorder_lock:
            writer = self.recorder
        if writer is None:
            return
        if sample is None:
            ring = self.acquisition.ring if self.acquisition else None
            sample = ring.end if ring is not None and ring.end is not None else 0
        self._record_safely(writer, "append_event", int(sample), kind, **fields)

    def _on_trial(self, trial: Any, onset: int) -> None:
        for listener in list(self.trial_listeners):
            listener(trial, onset)
        with self._recorder_lock:
            writer = self.recorder
        if writer is not None:
            pulse = trial.pulse
            self._record_safely(
                writer,
                "append_event",
                onset,
                "trial",
                index=int(trial.index),
                amplitude_vpp=pulse.amplitude_vpp,
                duration_s=pulse.duration_s,
                pair=pulse.pair,
                polarity=int(pulse.polarity),
            )

    def _on_run_status(self, status: RunnerStatus) -> None:
        armed = status.phase in (RunState.ARMED, RunState.RUNNING, RunState.PAUSED)
        if armed != self._armed:
            self._armed = armed
            self.events.armed_changed.emit(armed)
        self.events.run_state_changed.emit(status)

    def _on_link_error(self, error: DeviceError) -> None:
        self.faults.append(str(error))
        self.runner.fault(str(error))
        self.events.error_occurred.emit(error)
