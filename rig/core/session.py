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

from analysis.sync_code import led_brightness
from firmware_bridge.device import Device
from firmware_bridge.errors import DeviceError
from firmware_bridge.protocol import Decoded
from firmware_bridge.stimulus import StimPulse
from rig.core import fail_safe as outcomes
from rig.core._events import RigEvents
from rig.core.acquisition import Acquisition
from rig.core.board_messages import BoardMessages, trial_fields
from rig.core.fail_safe import EmergencyStopHeld, FailSafe
from rig.core.frame_clock import FrameClock
from rig.core.live_analysis import LiveAnalysis
from rig.core.realtime import tune_for_streaming
from rig.core.recorder import Recorder
from rig.core.runner import FinishReason, ProtocolRunner, RunnerStatus, RunState
from rig.core.stimulator import Stimulator
from rig.core.sync_led import SyncLed
from rig.rig_file import DEFAULT_CHANNELS, RigDescription

__all__ = ["EmergencyStopHeld", "Session"]

log = logging.getLogger(__name__)

FRAME_HISTORY_S = 60.0  # camera/trigger history kept while not recording
ARMED_PHASES = (RunState.ARMED, RunState.RUNNING, RunState.PAUSED)


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
        self.rig = rig = rig or RigDescription()
        if rig.pair_centres_m is not None and len(rig.pair_centres_m) != channels:
            raise ValueError(
                f"{rig.source} gives {len(rig.pair_centres_m)} electrode positions "
                f"for {channels} channels; allowed exactly {channels}, one per pair"
            )
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
            calibration=self._calibration("stimulator"),
            before_send=self._on_stimulus_requested,
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
        self.latest_frame: tuple[Any, float] | None = None
        # Where the timing LED shows in the image: the LED region calibration's
        # (measured), else the rig file's. The optical sync code blinks on it
        # (rig.core.sync_led, docs/optical-sync.md).
        region = self._calibration("led_region")
        self.led_region_px = region.region if region is not None else rig.led_region_px
        self._led_region = self.led_region_px if optical_sync else None
        self.sync_led: SyncLed | None = None
        self.recording_status: str | None = None  # the last recording's status
        self.frame_history_s = FRAME_HISTORY_S
        self._last_finish: FinishReason | None = None
        self._armed = self._closed = False
        self._resources = list(resources)  # closed after the device (a simulator)
        device.add_error_listener(self.fail_safe.on_link_error)

    limits = property(lambda self: self.stimulator.limits, doc="rig.safety limits")
    positions_m = property(lambda self: self.rig.pair_centres_m, doc="pair centres, m")
    stimuli = property(lambda self: self.messages.stimuli, doc="delivered stimuli")
    faults = property(lambda self: self.fail_safe.faults, doc="faults, in order")
    online = property(lambda self: self.live.online if self.live else None)
    tracking = property(lambda self: self.live.tracking if self.live else None)
    motion = property(lambda self: self.live.motion if self.live else None)
    emergency_latched = property(lambda self: self.fail_safe.emergency_latched)

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
        self.acquisition.add_consumer(self._consume)
        self.live = LiveAnalysis(
            self.rig,
            self.acquisition,
            self.events,
            fs_hz=self.sample_rate_hz,
            n_channels=self.n_channels,
            uv_per_count=self.uv_per_count(),
            requested_vpp=self.stimulator.requested_vpp,
            camera=self.camera,
            camera_calibration=self._calibration("camera"),
        )
        self.device.start_stream()
        if self.camera is not None:
            self.camera.start(self._on_frame)
            self.device.set_camera_trigger(self.camera_rate_hz)
            if self._led_region is not None:
                self.sync_led = SyncLed(
                    self.device, self.frame_clock, camera_rate_hz=self.camera_rate_hz
                )
                self.sync_led.start()

    def stop(self) -> None:
        """Stop the camera and streaming; drain what arrived."""
        if self.sync_led is not None:
            self.sync_led.stop()
        if self.device.error is None:
            try:
                if self.camera is not None:
                    self.device.set_camera_trigger(0)
                self.device.stop_stream()
            except DeviceError as exc:
                log.warning("stopping the stream: %s", exc)
        if self.camera is not None:
            self.camera.stop()
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

    def requested_vpp(self, commanded_mvpp: int) -> float:
        """The amplitude asked for that became this command (after correction)."""
        return self.stimulator.requested_vpp(commanded_mvpp)

    def emergency_stop(self) -> None:
        """Disarm now, from any thread, and stop any run; it holds (no arm, no
        run) until ``reset_fault``, and is recorded if recording."""
        self.fail_safe.emergency_stop()

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
        self._last_finish = None
        self.recorder.start(writer, ring.end if ring else None)
        self.events.recording_changed.emit(str(writer.folder))

    def stop_recording(self) -> Any:
        """Stop recording; write the frame table; close the writer with the
        outcome as its status, and return it (None if not recording)."""
        if self.acquisition is not None:
            self.acquisition.drain()
        was_recording = self.recorder.writer is not None
        cancelled = self._last_finish == FinishReason.CANCELLED
        finished = outcomes.CANCELLED if cancelled else outcomes.COMPLETED
        status = self.fail_safe.outcome or finished
        writer = self.recorder.finish(
            self.frame_clock,
            offset_samples=self._timing_offset_samples(),
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
        (after ``start``)."""
        assert self.live is not None, "setup_warnings() after start()"
        return self.live.warnings(self.calibrations, self.camera)

    def _timing_offset_samples(self) -> int:
        """Trigger to exposure, from the timing calibration (0 without one)."""
        timing = self._calibration("timing")
        return round(timing.offset_samples) if timing is not None else 0

    def _calibration(self, kind: str) -> Any:
        return self.calibrations.get(kind) if self.calibrations is not None else None

    # ------------------------------------------------------------ callbacks

    def _consume(self, decoded: Decoded, host_time: float) -> None:
        """Relay thread: record the batch and act on the board's messages."""
        try:
            ring = self.acquisition.ring if self.acquisition else None
            if ring is not None and ring.end is not None:
                self.frame_clock.add_progress(host_time, ring.end)
            if not self.recorder.busy:  # a recording needs its frames' history
                self.frame_clock.keep_recent(host_time, self.frame_history_s)
            self.recorder.record_batch(decoded)
            if self.camera is not None:
                self.recorder.record_frame_table(
                    self.frame_clock, self._timing_offset_samples(), host_time
                )
            for message in decoded.messages:
                self.messages.handle(message, host_time)
        except Exception as exc:  # a bug here would blind the host: fail safe
            log.exception("handling a batch from the board failed")
            reason = f"the host failed on the board's data: {exc!r}"
            self.fail_safe.trip(reason, outcomes.CRASHED)

    def _on_frame(self, frame: Any, host_time: float) -> None:
        """Camera thread: count the frame; the recorder's thread writes it."""
        index = self.frame_clock.add_frame(host_time)
        led, repeat = None, False
        if self._led_region is not None:  # the sync code's evidence, ~50 µs
            led = float(led_brightness(frame[None], self._led_region)[0])
            previous = self.latest_frame
            repeat = previous is not None and np.array_equal(previous[0], frame)
        self.latest_frame = (frame, host_time)
        self.events.frame_captured.emit(frame, host_time, index)
        if self.tracking is not None:
            trigger = self.frame_clock.latest_trigger()
            self.tracking.submit(frame, None if trigger is None else trigger[0])
        kept = self.recorder.record_frame(
            index, frame, host_time, led_brightness=led, repeat=repeat
        )
        if not kept:
            self.record_event("frame_dropped_by_host", frame_host_time_s=host_time)

    def _on_stimulus_requested(self, pulse: StimPulse, command: StimPulse) -> None:
        self.record_event(
            "stim_requested",
            amplitude_vpp=pulse.amplitude_vpp,
            commanded_vpp=command.amplitude_vpp,
            duration_s=pulse.duration_s,
            pair=pulse.pair,
            n_pulses=pulse.n_pulses,
        )

    def _on_trial(self, trial: Any, onset: int) -> None:
        self.events.trial_delivered.emit(trial, onset)
        self.recorder.record_event(onset, "trial", **trial_fields(trial))

    def _on_run_status(self, status: RunnerStatus) -> None:
        if status.finish_reason is not None:
            self._last_finish = status.finish_reason
        if status.phase == RunState.FAULT:
            self.fail_safe.on_runner_fault(status.message)
        armed = status.phase in ARMED_PHASES
        if armed != self._armed:
            self._armed = armed
            self.events.armed_changed.emit(armed)
        self.events.run_state_changed.emit(status)

    def _on_recording_failed(self, error: Exception) -> None:
        self.events.recording_changed.emit(None)
        self.fail_safe.on_recording_failed(error)
