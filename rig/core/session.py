"""Session: the headless core that the GUI, scripts and the CLI all drive.

A Session orchestrates one rig: the device, the acquisition (ring + relay
thread), the camera, a ``Recorder`` (rig.core.recorder), a ``Stimulator``
(rig.core.stimulator, the one way to stimulate) and the protocol runner. Open
one with ``rig.open_rig`` (the one front door, rig.core.connect); everything
the GUI can do, a script can do through these methods and ``session.events``.

Fail safe, never silent: whatever stops the recording, kills a worker thread or
blinds the host (disk full, a writer or runner error, the link lost, a latching
board fault) goes through ``_fail_safe``: the board is disarmed at once, a
host-side fault latches (no arm, no run until ``reset_fault``), the recording
keeps the outcome, and ``events.fault_raised`` says why.

Threads: the serial reader (firmware_bridge.link) fills the ring; the relay
thread (Acquisition) records and emits events; the runner thread delivers
trials; the camera thread delivers frames; the recorder's frame-writer thread
encodes them. Methods may be called from any thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from firmware_bridge.device import Device
from firmware_bridge.errors import DeviceDisconnected, DeviceError
from firmware_bridge.protocol import CameraTriggered, Decoded, Fault, StimDelivered
from firmware_bridge.protocol.messages import Boot
from firmware_bridge.stimulus import StimPulse
from rig.core._events import RigEvents
from rig.core.acquisition import Acquisition
from rig.core.board_messages import (
    event_record,
    fault_latches,
    fault_name,
    stimulus_fields,
)
from rig.core.frame_clock import FrameClock
from rig.core.live_tracking import LiveTracking
from rig.core.online_analysis import OnlineResponses
from rig.core.online_motion import OnlineMotion
from rig.core.realtime import tune_for_streaming
from rig.core.recorder import Recorder
from rig.core.runner import FinishReason, ProtocolRunner, RunnerStatus, RunState
from rig.core.stimulator import Stimulator
from rig.core.tracking_setup import live_tracking_for
from rig.recording import DiskFullError
from rig.rig_file import DEFAULT_CHANNELS, RigDescription

log = logging.getLogger(__name__)

FRAME_HISTORY_S = 60.0  # camera/trigger history kept while not recording
ARMED_PHASES = (RunState.ARMED, RunState.RUNNING, RunState.PAUSED)


class EmergencyStopHeld(RuntimeError):
    """Arming or running was refused: an emergency stop has not been reset."""


class Session:
    """One rig: device + acquisition + camera + recorder + stimulator + runner."""

    def __init__(
        self,
        device: Device,
        *,
        rig: RigDescription | None = None,
        camera: Any = None,
        calibrations: Any = None,
        sample_rate_hz: int = 30_000,
        channels: int = DEFAULT_CHANNELS,
        gain: int = 1000,
        camera_rate_hz: float = 60.0,
        ring_seconds: float = 60.0,
        resources: Iterable[Callable[[], None]] = (),
    ) -> None:
        self.rig = rig = rig or RigDescription()
        if rig.pair_centres_m is not None and len(rig.pair_centres_m) != channels:
            raise ValueError(
                f"{rig.source} gives {len(rig.pair_centres_m)} electrode positions "
                f"for {channels} channels; allowed exactly {channels}, one per pair"
            )
        self.device = device
        self.events = RigEvents()
        self.sample_rate_hz = sample_rate_hz
        self.n_channels = channels
        self.gain = gain
        self.camera = camera
        self.camera_rate_hz = camera_rate_hz
        self.ring_seconds = ring_seconds
        # Calibrations in force (calibration.CalibrationSet): gain for µV,
        # stimulator correction on every command, timing offset on frame stamps.
        self.calibrations = calibrations
        self.stimulator = Stimulator(
            device, limits=rig.limits, calibration=self._calibration("stimulator")
        )
        self.recorder = Recorder(on_failure=self._on_recording_failed)
        self.runner = ProtocolRunner(
            self.stimulator, on_status=self._on_run_status, on_trial=self._on_trial
        )
        self.frame_clock = FrameClock(sample_rate_hz)
        self.acquisition: Acquisition | None = None
        self.online: OnlineResponses | None = None
        self.tracking: LiveTracking | None = None  # set up by start() with a camera
        self.motion: OnlineMotion | None = None  # per-stimulus twitch, with tracking
        self.stimuli: list[dict[str, Any]] = []  # delivered, as STIM_DELIVERED said
        self.faults: list[str] = []
        self.emergency_latched = False  # holds until reset: no arm, no run
        self.outcome: str | None = None  # why the recording in progress ended early
        self.latest_frame: tuple[Any, float] | None = None
        self.frame_history_s = FRAME_HISTORY_S
        self._last_prune_s = 0.0
        self._last_finish: FinishReason | None = None
        self._armed = False
        self._closed = False
        self._resources = list(resources)  # closed after the device (a simulator)
        device.add_error_listener(self._on_link_error)

    @property
    def limits(self) -> Any:
        """The host's safety limits (rig.safety.SafetyLimits)."""
        return self.stimulator.limits

    @property
    def positions_m(self) -> Any:
        """Recording-pair centres along the body (m), or None if unknown."""
        return self.rig.pair_centres_m

    # ----------------------------------------------------------- lifecycle

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Configure the board, start streaming, the camera and live analysis."""
        tune_for_streaming()  # the reader thread must keep up with the board
        self.device.configure(
            sample_rate_hz=self.sample_rate_hz, channels=self.n_channels, gain=self.gain
        )
        acquisition = Acquisition(
            self.device, self.n_channels, ring_seconds=self.ring_seconds
        )
        self.acquisition = acquisition
        acquisition.add_consumer(self._consume)
        if self.positions_m is not None and self.device.info is not None:
            self.online = OnlineResponses(
                fs_hz=self.sample_rate_hz,
                n_channels=self.n_channels,
                positions_m=self.positions_m,
                uv_per_count=self.uv_per_count(),
                emit=self.events.response_measured.emit,
                requested_vpp=self.stimulator.requested_vpp,
            )
            acquisition.add_consumer(self.online.consume)
        if self.camera is not None:
            self.tracking = live_tracking_for(
                self.rig, self._calibration("camera"), self.sample_rate_hz
            )
        if self.tracking is not None:
            self.motion = OnlineMotion(
                self.tracking,
                fs_hz=self.sample_rate_hz,
                emit=self.events.motion_measured.emit,
                requested_vpp=self.stimulator.requested_vpp,
            )
            acquisition.add_consumer(self.motion.consume)
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
        if self.runner.status.phase in (RunState.RUNNING, RunState.PAUSED):
            self.runner.cancel()
            self.runner.wait(5.0)
        self._disarm_quietly()
        self.stop()
        self.stop_recording()
        self.recorder.close()
        if self.acquisition is not None:
            self.acquisition.close()
        self.device.close()
        for close in self._resources:
            close()

    # ------------------------------------------------------------ stimulation

    def arm(self) -> None:
        """Arm the board; refused while an emergency stop or a fault holds."""
        self._refuse_if_latched("arm")
        self.runner.arm()

    def disarm(self) -> None:
        """Disarm the board."""
        self.runner.disarm()

    def stimulate(self, pulse: StimPulse) -> int:
        """Check ``pulse`` against the limits, deliver it, return its onset."""
        return self.stimulator.stimulate(pulse)

    def requested_vpp(self, commanded_mvpp: int) -> float:
        """The amplitude asked for that became this command (after correction)."""
        return self.stimulator.requested_vpp(commanded_mvpp)

    def emergency_stop(self) -> None:
        """Disarm now, from any thread, and stop any run; it holds (no arm, no
        run) until ``reset_fault``, and is recorded if recording."""
        self.emergency_latched = True
        self.outcome = self.outcome or "emergency_stop"
        try:
            self.runner.emergency_stop()
        finally:
            self.record_event("emergency_stop")

    def reset_fault(self) -> None:
        """Clear a latched board fault and a held emergency stop (stays disarmed)."""
        self.device.reset_fault()
        self.runner.reset_fault()
        self.emergency_latched = False

    def run_protocol(self, trials: Any, *, n_trials: int = 0, wait: bool = False):
        """Run a plan (iterable of trials) or a closed-loop chooser; arms if
        needed, never after an emergency stop that has not been reset."""
        self._refuse_if_latched("run a protocol")
        if self.runner.status.phase == RunState.IDLE:
            self.runner.arm()
        if not n_trials and hasattr(trials, "__len__"):
            n_trials = len(trials)
        self.runner.start(trials, n_trials=n_trials)
        return self.runner.wait() if wait else self.runner.status

    def _refuse_if_latched(self, what: str) -> None:
        if self.emergency_latched:
            raise EmergencyStopHeld(
                f"cannot {what}: the emergency stop holds until it is reset "
                "(Session.reset_fault, neurorig reset)"
            )

    # ------------------------------------------------------------ recording

    def start_recording(self, writer: Any) -> None:
        """Record everything from now on into ``writer`` (a RecordingWriter)."""
        ring = self.acquisition.ring if self.acquisition else None
        self.outcome = None
        self._last_finish = None
        self.recorder.start(writer, ring.end if ring else None)
        self.events.recording_changed.emit(str(writer.folder))

    def stop_recording(self) -> Any:
        """Stop recording; write the frame table; close the writer with the
        outcome as its status, and return it (None if not recording)."""
        if self.acquisition is not None:
            self.acquisition.drain()
        was_recording = self.recorder.writer is not None
        writer, frame_indices = self.recorder.stop()
        if writer is None:
            return None
        if was_recording:
            timing = self._calibration("timing")
            offset = round(timing.offset_samples) if timing is not None else 0
            self.recorder.write_frame_table(
                writer, self.frame_clock, frame_indices, offset
            )
            self.events.recording_changed.emit(None)
        writer.close(self.outcome or self._finish_status())
        return writer

    def record_event(self, kind: str, sample: int | None = None, **fields: Any) -> None:
        """Add an event to the recording (if recording), at ``sample`` or now."""
        if sample is None:
            ring = self.acquisition.ring if self.acquisition else None
            sample = ring.end if ring is not None and ring.end is not None else 0
        self.recorder.record_event(sample, kind, **fields)

    def _finish_status(self) -> str:
        if self._last_finish == FinishReason.CANCELLED:
            return "cancelled"
        return "completed"

    # ------------------------------------------------------------ what the rig can do

    def uv_per_count(self) -> Any:
        """µV per count per channel: the gain calibration's, else the board's nominal."""
        gain = self._calibration("gain")
        if gain is not None and len(gain.uv_per_count) == self.n_channels:
            return np.asarray(gain.uv_per_count)
        info = self.device.info
        assert info is not None  # samples to scale come from a connected board
        return info.volts_per_count(self.gain) * 1e6

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

    # ------------------------------------------------------------ fail safe

    def _fail_safe(self, reason: str, outcome: str) -> None:
        """Disarm at once, latch a host-side fault, record why, say so."""
        self._disarm_quietly()
        self.outcome = self.outcome or outcome
        self.faults.append(reason)
        self.record_event("fail_safe", outcome=outcome, reason=reason)
        if self.runner.status.phase != RunState.FAULT:
            self.runner.fault(reason)
        self.events.fault_raised.emit(reason)

    def _disarm_quietly(self) -> None:
        if self.device.error is None:
            try:
                self.device.disarm()
            except DeviceError as exc:
                log.warning("disarming: %s", exc)

    def _on_recording_failed(self, error: Exception) -> None:
        outcome = "disk_full" if isinstance(error, DiskFullError) else "fault:recording"
        self.events.error_occurred.emit(error)
        self.events.recording_changed.emit(None)
        self._fail_safe(f"recording stopped: {error}", outcome)

    def _on_link_error(self, error: DeviceError) -> None:
        unplugged = isinstance(error, DeviceDisconnected)
        self.events.error_occurred.emit(error)
        self._fail_safe(str(error), "unplugged" if unplugged else "fault:link")

    # ------------------------------------------------------------ callbacks

    def _consume(self, decoded: Decoded, host_time: float) -> None:
        """Relay thread: record the batch and turn messages into events."""
        try:
            self._note_progress(host_time)
            self.recorder.record_batch(decoded)
            for message in decoded.messages:
                self._on_message(message, host_time)
        except Exception as exc:  # a bug here would blind the host: fail safe
            log.exception("handling a batch from the board failed")
            self._fail_safe(f"the host failed on the board's data: {exc!r}", "crashed")

    def _note_progress(self, host_time: float) -> None:
        ring = self.acquisition.ring if self.acquisition else None
        if ring is not None and ring.end is not None:
            self.frame_clock.add_progress(host_time, ring.end)
        if host_time - self._last_prune_s > self.frame_history_s / 6:
            self._last_prune_s = host_time
            if not self.recorder.busy:  # all day: memory stays flat
                self.frame_clock.forget_before(host_time - self.frame_history_s)

    def _on_message(self, message: Any, host_time: float) -> None:
        record = event_record(message, self.stimulator.requested_vpp)
        if record is not None:
            sample, kind, fields = record
            self.recorder.record_event(sample, kind, **fields)
        if isinstance(message, StimDelivered):
            fields = stimulus_fields(message, self.stimulator.requested_vpp)
            self.stimuli.append({"sample": message.sample_index, **fields})
            self.events.stim_delivered.emit(message.sample_index, fields)
        elif isinstance(message, CameraTriggered):
            self.frame_clock.add_trigger(
                message.sample_index, message.trigger_count, host_time
            )
        elif isinstance(message, Fault):
            text = f"board fault {fault_name(message.code)}: {message.message}"
            if fault_latches(message.code):
                self._fail_safe(text, f"fault:{fault_name(message.code)}")
            else:
                self.faults.append(text)
                self.events.fault_raised.emit(text)
        elif isinstance(message, Boot):
            self.record_event("board_rebooted", host_time=host_time)
            text = "the board rebooted: its sample counter restarted"
            self._fail_safe(text, "fault:BOARD_REBOOTED")
        elif record is not None and record[1] == "stream_anomaly":
            text = f"link: {message.message}"
            self.faults.append(text)
            self.events.fault_raised.emit(text)

    def _on_frame(self, frame: Any, host_time: float) -> None:
        """Camera thread: count the frame; the recorder's thread writes it."""
        index = self.frame_clock.add_frame(host_time)
        self.latest_frame = (frame, host_time)
        self.events.frame_captured.emit(frame, host_time, index)
        if self.tracking is not None:
            trigger = self.frame_clock.latest_trigger()
            self.tracking.submit(frame, None if trigger is None else trigger[0])
        self.recorder.record_frame(index, frame, host_time)

    def _on_trial(self, trial: Any, onset: int) -> None:
        self.events.trial_delivered.emit(trial, onset)
        pulse = trial.pulse
        self.recorder.record_event(
            onset,
            "trial",
            index=int(trial.index),
            amplitude_vpp=pulse.amplitude_vpp,
            duration_s=pulse.duration_s,
            pair=pulse.pair,
            polarity=int(pulse.polarity),
        )

    def _on_run_status(self, status: RunnerStatus) -> None:
        if status.finish_reason is not None:
            self._last_finish = status.finish_reason
        if status.phase == RunState.FAULT:
            self._disarm_quietly()  # the runner's own faults (refused, crashed)
            self.outcome = self.outcome or "fault:runner"
        armed = status.phase in ARMED_PHASES
        if armed != self._armed:
            self._armed = armed
            self.events.armed_changed.emit(armed)
        self.events.run_state_changed.emit(status)
