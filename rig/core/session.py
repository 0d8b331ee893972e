"""Session: the headless core that the GUI, scripts and the CLI all drive.

A Session orchestrates one rig: the device, the acquisition (ring + relay
thread), the camera, a ``Recorder`` (rig.core.recorder), a ``Stimulator``
(rig.core.stimulator, the one way to stimulate) and the protocol runner. Open
one with ``rig.open_rig`` (the one front door, rig.core.connect); everything
the GUI can do, a script can do through these methods and ``session.events``.

Fail safe, never silent: whatever stops the recording, kills a worker thread or
blinds the host goes through one rule (rig.core.fail_safe): disarm at once,
latch, record the outcome, say why.

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
from firmware_bridge.errors import DeviceError
from firmware_bridge.stimulus import StimPulse
from rig.core._events import RigEvents
from rig.core.acquisition import Acquisition
from rig.core.board_messages import BoardMessages, requested_fields, trial_fields
from rig.core.camera_intake import CameraIntake
from rig.core.fail_safe import EmergencyStopHeld, FailSafe
from rig.core.frame_clock import FrameClock
from rig.core.live_analysis import LiveAnalysis
from rig.core.realtime import tune_for_streaming
from rig.core.recorder import Recorder
from rig.core.relay import BoardRelay
from rig.core.runner import ProtocolRunner, RunnerStatus, RunState
from rig.core.stimulator import Stimulator
from rig.recording.subject import SessionInfo, Subject, check_note
from rig.rig_file import DEFAULT_CHANNELS, RigDescription

__all__ = ["EmergencyStopHeld", "Session"]

log = logging.getLogger(__name__)

FRAME_HISTORY_S = 60.0  # camera/trigger history kept while not recording
ARMED_PHASES = (RunState.ARMED, RunState.RUNNING, RunState.PAUSED)


def calibration_of(calibrations: Any, kind: str) -> Any:
    """The calibration of ``kind`` in force, or None."""
    return calibrations.get(kind) if calibrations is not None else None


def timing_offset_samples(calibrations: Any) -> int:
    """Trigger to exposure, from the timing calibration (0 without one)."""
    timing = calibration_of(calibrations, "timing")
    return round(timing.offset_samples) if timing is not None else 0


def _one_position_per_pair(rig: RigDescription, channels: int) -> RigDescription:
    if rig.pair_centres_m is not None and len(rig.pair_centres_m) != channels:
        raise ValueError(
            f"{rig.source} gives {len(rig.pair_centres_m)} electrode positions "
            f"for {channels} channels; allowed exactly {channels}, one per pair"
        )
    return rig


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
        optical_sync: bool = True,
    ) -> None:
        self.rig = rig = _one_position_per_pair(rig or RigDescription(), channels)
        self.device = device
        self.events = RigEvents()
        self.sample_rate_hz, self.n_channels, self.gain = sample_rate_hz, channels, gain
        self.camera, self.camera_rate_hz = camera, camera_rate_hz
        self.ring_seconds = ring_seconds
        # Calibrations in force (calibration.CalibrationSet): gain for µV,
        # stimulator correction on every command, timing offset on frame stamps.
        self.calibrations = calibrations
        self.stimulator = Stimulator(
            device,
            limits=rig.limits,
            calibration=calibration_of(self.calibrations, "stimulator"),
            before_send=lambda pulse, command: self.record_event(
                "stim_requested", **requested_fields(pulse, command)
            ),
        )
        self.recorder = Recorder(on_failure=self._on_recording_failed)
        self.runner = ProtocolRunner(
            self.stimulator, on_status=self._on_run_status, on_trial=self._on_trial
        )
        self.fail_safe = FailSafe(device, self.runner, self.events, self.record_event)
        self.frame_clock = FrameClock(sample_rate_hz)
        self.messages = BoardMessages(
            recorder=self.recorder,
            frame_clock=self.frame_clock,
            events=self.events,
            fail_safe=self.fail_safe,
            requested_vpp=self.stimulator.requested_vpp,
            record_now=self.record_event,
            fs_hz=sample_rate_hz,
        )
        self.acquisition: Acquisition | None = None
        self.live: LiveAnalysis | None = None  # set up by start()
        # Where the timing LED shows in the image: the LED region calibration's
        # (measured), else the rig file's. The optical sync code blinks on it
        # (rig.core.sync_led, docs/optical-sync.md).
        region = calibration_of(self.calibrations, "led_region")
        self.led_region_px = region.region if region is not None else rig.led_region_px
        self.camera_intake = (
            None
            if camera is None
            else CameraIntake(
                camera,
                device,
                frame_clock=self.frame_clock,
                recorder=self.recorder,
                events=self.events,
                rate_hz=camera_rate_hz,
                # the optical sync code needs to know where the LED shows
                led_region_px=self.led_region_px if optical_sync else None,
                tracking=lambda: self.tracking,
                record_event=self.record_event,
            )
        )
        self.recording_status: str | None = None  # the last recording's status
        # Who is recorded, by whom and why: written into each new recording's
        # metadata (rig.recording.subject); the rig file's defaults until a
        # script, the CLI or a form sets them.
        self.subject: Subject = rig.subject
        self.session_info: SessionInfo = rig.session_info
        self.frame_history_s = FRAME_HISTORY_S
        self._armed = self._closed = False
        self._resources = list(resources)  # closed after the device (a simulator)
        device.add_error_listener(self.fail_safe.on_link_error)

    limits = property(lambda self: self.stimulator.limits, doc="rig.safety limits")
    positions_m = property(lambda self: self.rig.pair_centres_m, doc="pair centres, m")
    stim_electrode_positions_m = property(
        lambda self: self.rig.stim_electrodes_m,
        doc="the stimulation electrodes' positions, m (a closed loop over sites)",
    )
    stimuli = property(lambda self: self.messages.stimuli, doc="delivered stimuli")
    faults = property(lambda self: self.fail_safe.faults, doc="faults, in order")
    online = property(lambda self: self.live.online if self.live else None)
    tracking = property(lambda self: self.live.tracking if self.live else None)
    motion = property(lambda self: self.live.motion if self.live else None)
    emergency_latched = property(lambda self: self.fail_safe.emergency_latched)
    local_stop_latched = property(lambda self: self.fail_safe.local_stop_latched)

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
        self.acquisition = Acquisition(
            self.device, self.n_channels, ring_seconds=self.ring_seconds
        )
        self.acquisition.add_consumer(
            BoardRelay(
                self.acquisition.ring,
                frame_clock=self.frame_clock,
                recorder=self.recorder,
                messages=self.messages,
                fail_safe=self.fail_safe,
                with_camera=self.camera is not None,
                frame_offset_samples=timing_offset_samples(self.calibrations),
                frame_history_s=self.frame_history_s,
            )
        )
        self.live = LiveAnalysis(
            self.rig,
            self.acquisition,
            self.events,
            fs_hz=self.sample_rate_hz,
            n_channels=self.n_channels,
            uv_per_count=self.uv_per_count(),
            requested_vpp=self.stimulator.requested_vpp,
            camera=self.camera,
            camera_calibration=calibration_of(self.calibrations, "camera"),
        )
        # Before streaming and arming: compiling at the first stimulus would
        # hold the GIL for seconds with the board armed (HOST_LOSS).
        self.live.warm_up()
        tracking = self.live.tracking
        if tracking is not None:  # each tracked frame into the recording too
            tracking.frame_sinks.append(
                lambda index, sample, positions_mm: self.recorder.record_tracking(
                    index, sample, positions_mm, tracking
                )
            )
        self.device.start_stream()
        if self.camera_intake is not None:
            self.camera_intake.start()

    def stop(self) -> None:
        """Stop the camera and streaming; drain what arrived."""
        intake = self.camera_intake
        if intake is not None:
            intake.stop_sync_code_and_trigger()
        if self.device.error is None:
            try:
                self.device.stop_stream()
            except DeviceError as exc:
                log.warning("stopping the stream: %s", exc)
        if intake is not None:
            intake.stop_camera()
        if self.live is not None:
            self.live.close()
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
        self.fail_safe.disarm_quietly()
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
        self.fail_safe.refuse_if_latched("arm")
        self.runner.arm()

    def disarm(self) -> None:
        """Disarm the board."""
        self.runner.disarm()

    def stimulate(self, pulse: StimPulse) -> int:
        """Check ``pulse`` against the limits, deliver it, return its onset."""
        return self.stimulator.stimulate(pulse)

    def emergency_stop(self, *, remote: bool = False) -> None:
        """Disarm now, from any thread, and stop any run; it holds (no arm, no
        run) until ``reset_fault``, and is recorded if recording. ``remote``:
        pressed by a remote client (rig.remote), which may then release it; a
        stop pressed here holds against a remote reset."""
        self.fail_safe.emergency_stop(remote=remote)

    def reset_fault(self) -> None:
        """Clear a latched board fault and a held emergency stop (stays disarmed)."""
        self.device.reset_fault()
        self.fail_safe.reset()

    def run_protocol(self, trials: Any, *, n_trials: int = 0, wait: bool = False):
        """Run a plan (iterable of trials) or a closed-loop chooser; arms if
        needed, never after an emergency stop that has not been reset."""
        self.fail_safe.refuse_if_latched("run a protocol")
        if self.runner.status.phase == RunState.IDLE:
            self.runner.arm()
        if not n_trials and hasattr(trials, "__len__"):
            n_trials = len(trials)
        self.runner.start(trials, n_trials=n_trials)
        return self.runner.wait() if wait else self.runner.status

    # ------------------------------------------------------------ recording

    def start_recording(self, writer: Any) -> None:
        """Record everything from now on into ``writer`` (a RecordingWriter)."""
        ring = self.acquisition.ring if self.acquisition else None
        self.fail_safe.new_recording()
        self.recorder.start(writer, ring.end if ring else None)
        intake = self.camera_intake
        if intake is not None and intake.led_region_px is not None:
            # What an offline reader needs to align the frames by the LED code
            # itself, should this recording be cut short before it is closed
            # (docs/recording-format.md, "optical_sync").
            writer.update_metadata(
                optical_sync={
                    "led_region_px": [int(v) for v in intake.led_region_px],
                    "delay_samples": timing_offset_samples(self.calibrations),
                }
            )
        self.events.recording_changed.emit(str(writer.folder))

    def stop_recording(self) -> Any:
        """Stop recording; write the frame table; close the writer with the
        outcome as its status, and return it (None if not recording)."""
        if self.acquisition is not None:
            self.acquisition.drain()
        was_recording = self.recorder.writer is not None
        status = self.fail_safe.recording_outcome()
        writer = self.recorder.finish(
            self.frame_clock,
            offset_samples=timing_offset_samples(self.calibrations),
            status=status,
        )
        if writer is not None:
            self.recording_status = status
        if was_recording:
            self.events.recording_changed.emit(None)
        return writer

    def record_event(self, kind: str, sample: int | None = None, **fields: Any) -> None:
        """Add an event to the recording (if recording), at ``sample`` or now."""
        if sample is None:
            ring = self.acquisition.ring if self.acquisition else None
            sample = ring.end if ring is not None and ring.end is not None else 0
        self.recorder.record_event(sample, kind, **fields)

    def note(self, text: str) -> int:
        """Add a timestamped note to the recording in progress: an event
        ``note`` (``text``) in events.jsonl at the newest sample, on the board's
        clock; returns that sample. Any thread (a form's worker, a script).

        Raises ``MetadataError`` (a ValueError) for an empty or over-long note
        (1–2000 characters) and ``RuntimeError`` when nothing is being recorded
        (a note belongs to a recording)."""
        text = check_note(text)
        if self.recorder.writer is None:
            raise RuntimeError(
                "note: no recording in progress; a note is kept in a recording's "
                "events.jsonl (start a recording first)"
            )
        ring = self.acquisition.ring if self.acquisition else None
        sample = ring.end if ring is not None and ring.end is not None else 0
        self.recorder.record_event(sample, "note", text=text)
        self.events.note_added.emit(sample, text)
        return sample

    # ------------------------------------------------------------ what the rig can do

    def uv_per_count(self) -> Any:
        """µV per count per channel: the gain calibration's, else the board's nominal."""
        gain = calibration_of(self.calibrations, "gain")
        if gain is not None and len(gain.uv_per_count) == self.n_channels:
            return np.asarray(gain.uv_per_count)
        info = self.device.info
        assert info is not None  # samples to scale come from a connected board
        return info.volts_per_count(self.gain) * 1e6

    def setup_warnings(self) -> list[str]:
        """What this session cannot do for want of a calibration or the rig file
        (after ``start``)."""
        assert self.live is not None, "setup_warnings() after start()"
        return self.live.warnings(self.calibrations, self.camera)

    # ------------------------------------------------------------ callbacks

    def _on_trial(self, trial: Any, onset: int) -> None:
        self.events.trial_delivered.emit(trial, onset)
        self.recorder.record_event(onset, "trial", **trial_fields(trial))

    def _on_run_status(self, status: RunnerStatus) -> None:
        self.fail_safe.on_run_status(status)
        armed = status.phase in ARMED_PHASES
        if armed != self._armed:
            self._armed = armed
            self.events.armed_changed.emit(armed)
        self.events.run_state_changed.emit(status)

    def _on_recording_failed(self, error: Exception) -> None:
        self.events.recording_changed.emit(None)
        self.fail_safe.on_recording_failed(error)
