"""SimulatedRig: the simulated board on a real pseudo-terminal, paced in real time.

The host opens ``rig.port`` (the pty's slave path) with plain ``serial.Serial``,
exactly as it opens ``/dev/ttyACM0``. A pacing thread advances the board's sample
clock with wall time, reads host commands from the pty's master side and writes
the board's frames to it (through the fault injector). If the host stops reading,
the board drops frames once its USB buffer is full, as a CDC device does
(``FAULT(TX_OVERFLOW)``), instead of blocking.
"""

from __future__ import annotations

import errno
import json
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any

import numpy as np

from firmware_bridge.protocol import FaultCode
from firmware_bridge.sim._optics import CameraOptics
from firmware_bridge.sim.board import BoardLimits, SimBoard
from firmware_bridge.sim.camera import EXPOSURE_DELAY_S, SimCamera
from firmware_bridge.sim.fault_plan import FaultInjector, FaultPlan
from firmware_bridge.sim.worm import RacewayGeometry, WormModel, WormParams

TICK_S = 0.002
TX_BUFFER_LIMIT = 1 << 20  # bytes the "USB stack" holds before dropping frames


class SimulatedRig:
    """A simulated board (worm + firmware) serving a pseudo-terminal."""

    def __init__(
        self,
        *,
        seed: int = 1,
        n_channels: int = 4,
        sample_rate_hz: int = 30_000,
        params: WormParams | None = None,
        geometry: RacewayGeometry | None = None,
        faults: FaultPlan | None = None,
        optics: CameraOptics | None = None,
        limits: BoardLimits | None = None,
        keep_ground_truth: bool = True,
    ) -> None:
        if geometry is None:
            geometry = RacewayGeometry.for_channels(n_channels)
        self.seed = seed
        self.model = WormModel(params, geometry, fs_hz=sample_rate_hz, seed=seed)
        self.board = SimBoard(self.model, limits=limits or BoardLimits())
        self.board.sample_rate_hz = sample_rate_hz
        self.board.channel_mask = (1 << geometry.n_channels) - 1
        self.board.on_camera_trigger = self._on_camera_trigger
        self.plan = faults or FaultPlan(seed=seed)
        self.faults = FaultInjector(self.plan)
        self.optics = optics or CameraOptics()
        self._camera: SimCamera | None = None
        # Ground truth per DATA frame and per camera frame; long soaks turn it
        # off (it grows ~10 MB per minute at 60 fps).
        self.keep_ground_truth = keep_ground_truth
        self.frames_log: list[dict[str, Any]] = []
        self.bytes_sent = 0
        self.frames_dropped_tx = 0
        self.max_lag_s = 0.0
        self.unplugged = False
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # Keep our slave fd open: with none open, the master side reads EIO.
        self.port = os.ttyname(self._slave)
        os.set_blocking(self._master, False)
        self._pending = bytearray()
        self._want_write = False  # bytes wait for room in the pty
        self._overflowed = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sim-rig", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SimulatedRig:
        """Build from ``sim://?seed=3&channels=4&rate=30000`` style options."""
        known = {"seed", "channels", "rate"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(
                f"unknown sim:// options {sorted(unknown)}; known: {sorted(known)}"
            )
        values = {}
        for key, default in (("seed", 1), ("channels", 4), ("rate", 30_000)):
            try:
                values[key] = int(options.get(key, default))
            except ValueError:
                raise ValueError(
                    f"sim:// option {key}={options[key]!r} is not a whole number"
                ) from None
        board = BoardLimits()
        if not 1 <= values["channels"] <= board.max_channels:
            raise ValueError(
                f"sim:// option channels={values['channels']}: allowed "
                f"1–{board.max_channels}"
            )
        if values["rate"] not in board.sample_rates_hz:
            raise ValueError(
                f"sim:// option rate={values['rate']}: allowed "
                f"{', '.join(map(str, board.sample_rates_hz))} Hz"
            )
        return cls(
            seed=values["seed"],
            n_channels=values["channels"],
            sample_rate_hz=values["rate"],
        )

    def camera(self) -> SimCamera:
        """The simulated camera (one per rig)."""
        if self._camera is None:
            self._camera = SimCamera(self, optics=self.optics)
        return self._camera

    def geometry_dict(self) -> dict:
        """Electrode geometry, and the camera's nominal scale, for recording metadata."""
        geometry = self.model.geometry.to_dict()
        geometry["camera"] = {
            "px_per_mm": self.optics.px_per_mm,
            "origin_px": list(self.optics.origin_px),
            "note": "nominal optics of the simulated camera (no calibration applied)",
        }
        return geometry

    def unplug(self) -> None:
        """Close the board's side of the port: the host's next read fails (EIO)."""
        with self._lock:
            if self.unplugged:
                return
            self.unplugged = True
            self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        """Stop the rig and close the port (idempotent)."""
        if self._camera is not None:
            self._camera.stop()
        self.unplug()

    def __enter__(self) -> SimulatedRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ground_truth(self) -> dict[str, Any]:
        """What the rig did: stimuli, spikes, DATA frames sent, faults, frames."""
        data = self.model.ground_truth()
        data["samples_sent"] = self.board.sent_samples
        data["data_frames"] = self.frames_log
        data["fault_plan"] = self.plan.to_dict()
        data["frames_damaged"] = self.faults.frames_damaged
        data["commands_lost"] = self.faults.commands_lost
        data["frames_dropped_tx"] = self.frames_dropped_tx
        data["camera_frames_dropped"] = (
            list(self._camera.dropped) if self._camera else []
        )
        data["max_lag_s"] = self.max_lag_s
        return data

    def write_ground_truth(self, path: str | Path) -> None:
        """Write ``ground_truth`` as JSON, and frame-by-frame segment positions.

        Segment boundaries of every frame the simulated camera delivered go to
        ``<path stem>_segments.npz`` (trigger_count, sample, boundaries_m), too
        large for JSON on long runs.
        """
        path = Path(path)
        path.write_text(json.dumps(self.ground_truth, indent=1, default=float))
        if self._camera is not None and self._camera.truth:
            counts, samples, bounds = zip(*self._camera.truth, strict=True)
            np.savez_compressed(
                path.with_name(path.stem + "_segments.npz"),
                trigger_count=np.array(counts),
                sample=np.array(samples),
                boundaries_m=np.stack(bounds),
            )

    # ------------------------------------------------------------ pacing

    def _on_camera_trigger(self, sample: int, count: int) -> None:
        if self._camera is not None:
            exposed = sample + round(EXPOSURE_DELAY_S * self.board.sample_rate_hz)
            self._camera.trigger(exposed, count)

    def led_lit_at(self, sample: int) -> bool:
        """Whether the timing LED was on at ``sample`` (as far as the board knows now)."""
        return any(on <= sample < until for on, until in list(self.board.led_history))

    def _run(self) -> None:
        t0 = time.monotonic()
        base = self.board.sample
        rate = self.board.sample_rate_hz
        last = t0
        rebooted = False
        while not self._stop.is_set():
            # Wake for host commands, and for room in the pty while bytes wait:
            # the USB stack sends as fast as the host takes them, not once a tick.
            writable = [self._master] if self._want_write else []
            ready, _, _ = select.select([self._master], writable, [], TICK_S)
            frames = []
            if ready:
                try:
                    data = os.read(self._master, 65536)
                except OSError as exc:
                    if exc.errno not in (errno.EIO, errno.EAGAIN):
                        raise
                    data = b""
                data = self.faults.from_host(data)
                if data:
                    frames.extend(self.board.receive(data))
            now = time.monotonic()
            elapsed = now - t0
            if self.plan.unplug_at_s is not None and elapsed >= self.plan.unplug_at_s:
                threading.Thread(target=self.unplug, daemon=True).start()
                return
            if (
                self.plan.reboot_at_s is not None
                and not rebooted
                and elapsed >= self.plan.reboot_at_s
            ):
                rebooted = True
                frames.extend(self.board.reset(FaultCode.WATCHDOG_RESET))
                t0, base = now, 0
            if self.board.sample_rate_hz != rate:  # CONFIGURE changed the clock
                rate = self.board.sample_rate_hz
                t0, base = now, self.board.sample
            target = base + int((now - t0) * rate)
            if ready and data and target > self.board.sample:
                # A starved simulator catches up in one step: what the host sent
                # meanwhile arrived by now, not at the stale sample it was read.
                self.board.note_host_alive(target)
            if target > self.board.sample:
                frames.extend(self.board.advance(target - self.board.sample))
            self.max_lag_s = max(self.max_lag_s, time.monotonic() - now)
            self._send(frames, now - last, elapsed)
            last = now

    def _stalled(self, elapsed: float) -> bool:
        if time.monotonic() < self.faults.stall_until:  # a stall_after stall
            return True
        return any(s <= elapsed < s + d for s, d in self.plan.stalls)

    def _send(self, frames, dt_s: float, elapsed: float) -> None:
        self.faults.tick(dt_s)
        for kind, first, n, raw in frames:
            out, damaged = self.faults.apply(raw)
            if kind == "data" and (self.keep_ground_truth or damaged):
                self.frames_log.append({"first": first, "n": n, "damaged": damaged})
            if len(self._pending) > TX_BUFFER_LIMIT:
                self.frames_dropped_tx += 1
                self._overflowed = True
                continue
            self._pending += out
        if self._overflowed and len(self._pending) < TX_BUFFER_LIMIT // 2:
            # Report the overflow once there is room again, as firmware would.
            self._overflowed = False
            _, _, _, raw = self.board.fault_frame(
                FaultCode.TX_OVERFLOW, f"{self.frames_dropped_tx} frames dropped"
            )
            self._pending += raw
        self._want_write = False
        if self._stalled(elapsed):
            return
        while self._pending:  # a pty takes ~10 KB a write: write until it is full
            try:
                written = os.write(self._master, self._pending)
            except BlockingIOError:
                self._want_write = True
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    return
                raise
            self.bytes_sent += written
            del self._pending[:written]
