"""The simulated camera: renders the worm from the model at each camera trigger.

Frames show the body lying along the raceway with darker segment boundaries,
tapered ends, soft edges, a lighting gradient and sensor noise, through the
optics of ``CameraOptics`` (scale, placement, radial lens distortion); a worm
that bends or crawls (``WormParams.bend_*``, ``crawl_*``) is drawn in its
posture (``firmware_bridge.sim.posture``). A frame is
rendered for each CAMERA_TRIGGERED the board emits, at that sample's segment
positions, and delivered after a fixed readout latency, as a hardware-triggered
camera would; the fault plan may drop some.

Like a V4L2 camera's buffer sequence numbers, every frame carries the camera's
own frame number (``frame_number``, set before ``on_frame`` is called): the
exposures counted since the camera started, so a frame lost on the way leaves
a gap in the numbers. ``log_truth_to`` writes what each delivered frame truly
shows (its trigger, the exposure sample, the LED, a digest of its pixels), for
benchmarks that check the host's frame table from outside its process.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TextIO

import numpy as np

from firmware_bridge.sim._optics import CameraOptics
from firmware_bridge.sim.posture import Posture, body_layers

READOUT_LATENCY_S = 0.006
# Like a real camera's few frame buffers: a frame that cannot be delivered within
# this long of its trigger (the simulator fell behind) is dropped, not sent late.
FRAME_BUFFER_S = 0.050
# Known truth for the timing calibration: the camera exposes this long after its
# trigger pulse, so a frame shows the scene at trigger sample + delay.
EXPOSURE_DELAY_S = 0.002


@lru_cache(maxsize=4)
def _undistort_maps(optics: CameraOptics) -> tuple[np.ndarray, np.ndarray] | None:
    """For each output (distorted) pixel, where it looks in the ideal image."""
    if optics.k1 == 0 and optics.k2 == 0:
        return None
    import cv2

    h, w = optics.height_px, optics.width_px
    uu, vv = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    pts = np.stack([uu.ravel(), vv.ravel()], axis=1)[:, None, :]
    k = optics.camera_matrix()
    ideal = cv2.undistortPoints(pts, k, optics.dist_coeffs(), P=k).reshape(h, w, 2)
    return ideal[..., 0].astype(np.float32), ideal[..., 1].astype(np.float32)


@lru_cache(maxsize=4)
def _noise_bank(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 3.0, size=(6, h, w)).astype(np.float32)


def render_worm_frame(
    boundaries_m: np.ndarray,
    optics: CameraOptics | None = None,
    *,
    body_diameter_m: float = 0.008,
    frame_index: int = 0,
    led_on: bool = False,
    noise_seed: int = 0,
    posture: Posture | None = None,
    time_s: float = 0.0,
) -> np.ndarray:
    """Grayscale uint8 image ``(height, width)`` of the worm at these boundaries.

    ``boundaries_m`` are ``WormModel.segment_boundaries_m``'s; with a
    ``posture`` the body lies as it does at ``time_s``, else straight along x.
    """
    o = optics or CameraOptics()
    h, w = o.height_px, o.width_px
    scale = o.px_per_mm * 1000.0  # px per metre
    cols = np.arange(w, dtype=np.float64)
    rows = np.arange(h, dtype=np.float64)[:, None] - o.origin_px[1]
    background = 55.0 + 25.0 * (cols[None, :] / w) + 10.0 * (rows / h)
    if posture is not None:
        along = np.asarray(boundaries_m, dtype=float) - posture.head_rest_m
        alpha, shaded = body_layers(posture, along, time_s, o, body_diameter_m)
        return _finish(background + alpha * (shaded - background), o, frame_index,
                       led_on, noise_seed)  # fmt: skip
    bounds_px = o.origin_px[0] + scale * np.asarray(boundaries_m, dtype=float)
    head, tail = bounds_px[0], bounds_px[-1]
    length = max(tail - head, 1.0)
    s = np.clip((cols - head) / length, 0.0, 1.0)
    taper = np.clip(np.minimum(s, 1.0 - s) * 8.0, 0.0, 1.0) ** 0.5
    # The flat ends cover the pixels they cut partly (a sensor's pixel
    # integrates), so a tip that moves by a fraction of a pixel shows it.
    cover = np.clip(np.minimum(cols - head, tail - cols) + 0.5, 0.0, 1.0)
    radius = np.where(
        cover > 0, 0.5 * body_diameter_m * scale * (0.35 + 0.65 * taper), 0.0
    )
    # Distance from each column to the nearest segment boundary, in pixels.
    pos = np.searchsorted(bounds_px, cols).clip(1, len(bounds_px) - 1)
    dist = np.minimum(np.abs(cols - bounds_px[pos - 1]), np.abs(cols - bounds_px[pos]))
    body = 175.0 - 70.0 * np.exp(-((dist / 1.3) ** 2)) - 20.0 * (1.0 - taper)
    alpha = np.clip(radius[None, :] - np.abs(rows) + 0.5, 0.0, 1.0) * cover
    shading = 1.0 - 0.35 * (rows / np.maximum(radius[None, :], 1.0)) ** 2
    image = background + alpha * (
        body[None, :] * np.clip(shading, 0.4, 1.0) - background
    )
    return _finish(image, o, frame_index, led_on, noise_seed)


def _finish(
    image: np.ndarray,
    o: CameraOptics,
    frame_index: int,
    led_on: bool,
    noise_seed: int,
) -> np.ndarray:
    """The LED, the lens's distortion and the sensor's noise, as uint8."""
    import cv2

    h, w = o.height_px, o.width_px
    if led_on:
        top, bottom, left, right = o.led_region_px
        image[top:bottom, left:right] = 255.0
    image = image.astype(np.float32)
    maps = _undistort_maps(o)
    if maps is not None:
        image = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderValue=55.0)
    image += _noise_bank(h, w, noise_seed)[frame_index % 6]
    return np.clip(image, 0, 255).astype(np.uint8)


FrameCallback = Callable[[np.ndarray, float], None]
TRUTH_HEADER = (
    "frame_number,trigger_count,trigger_sample,exposure_sample,led_on,digest\n"
)


def frame_digest(frame: np.ndarray) -> str:
    """A short digest of a frame's pixels (16 hex digits), to recognise it in a
    decoded lossless video."""
    data = np.ascontiguousarray(frame, dtype=np.uint8).data
    return hashlib.blake2b(data, digest_size=8).hexdigest()


class SimCamera:
    """A camera source (start/stop/latest) fed by the simulated board's triggers."""

    def __init__(self, rig, *, optics: CameraOptics | None = None) -> None:
        self.rig = rig
        self.optics = optics or CameraOptics()
        self.source = "sim"
        self.frames_read = 0
        self.dropped: list[int] = []  # trigger counts whose frame was not delivered
        # Ground truth of every delivered frame: trigger count, sample, boundaries.
        self.truth: list[tuple[int, int, np.ndarray]] = []
        self.latest: tuple[np.ndarray, float] | None = None
        # The frame being delivered: exposures since start() (None before any).
        self.frame_number: int | None = None
        self._first_count: int | None = None  # trigger count of frame number 0
        self._truth_log: TextIO | None = None
        # A calibration target shown instead of the worm: frame index -> image.
        self.target: Callable[[int], np.ndarray] | None = None
        # A worm that bends or crawls (else drawn straight, as ever); its
        # boundaries on the raceway: posture.boundaries_xy_m(model, sample).
        posture = Posture(rig.model)
        self.posture = None if posture.still else posture
        self._queue: queue.Queue = queue.Queue(maxsize=1024)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Render once now: the first render builds caches (noise bank, lens
        # maps) and would otherwise delay the first frames by ~100 ms, which a
        # hardware-triggered camera never does.
        render_worm_frame(
            rig.model.segment_boundaries_m(0), self.optics, noise_seed=rig.seed,
            posture=self.posture,
        )  # fmt: skip

    def show_checkerboard(
        self,
        squares: tuple[int, int],
        square_mm: float,
        poses: list[tuple[tuple[float, float], float]],
    ) -> None:
        """Lay a checkerboard on the raceway instead of the worm, moved to the
        next of ``poses`` ((x_mm, y_mm), angle_rad) each frame (a camera
        calibration's target); ``target = None`` takes it away."""
        from firmware_bridge.sim.targets import render_checkerboard

        self.target = lambda k: render_checkerboard(
            self.optics,
            squares=squares,
            square_mm=square_mm,
            offset_mm=poses[k % len(poses)][0],
            angle_rad=poses[k % len(poses)][1],
            noise_seed=k,
        )

    def log_truth_to(self, path: str | Path) -> None:
        """Append a line per delivered frame to the CSV file ``path``
        (``TRUTH_HEADER``; flushed per line): its frame number, the trigger that
        exposed it, that trigger's sample, the exposure's sample, whether the
        LED was lit and ``frame_digest`` of its pixels."""
        log = open(path, "w", encoding="ascii", buffering=1)
        log.write(TRUTH_HEADER)
        self._truth_log = log

    def close_truth_log(self) -> None:
        """Stop logging (closes the file)."""
        log, self._truth_log = self._truth_log, None
        if log is not None:
            log.close()

    def trigger(self, sample: int, count: int) -> None:
        """Called by the rig's pacing thread at each camera trigger (``sample``:
        the exposure's)."""
        if self.rig.faults.drop_camera_frame():
            self.dropped.append(count)
            return
        try:
            self._queue.put_nowait((sample, count, time.monotonic()))
        except queue.Full:
            self.dropped.append(count)

    def start(self, on_frame: FrameCallback) -> None:
        """Deliver frames to ``on_frame`` from a camera thread."""
        self._first_count = None  # numbering starts again, as a stream's does
        # A stream starts with empty buffers, as a V4L2 one does at STREAMON:
        # triggers queued for the last reader and never read (a starved camera
        # thread leaves some) would otherwise number this stream from a stale
        # trigger count: the board restarts its count when the trigger is set
        # again, so every frame's number came out negative (sent as none).
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(on_frame,), name="sim-camera", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering frames."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _loop(self, on_frame: FrameCallback) -> None:
        model = self.rig.model
        while not self._stop.is_set():
            try:
                sample, count, t_trigger = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if self._first_count is None:  # frame number 0: the first exposure
                self._first_count = count  # this stream takes (queued in order)
            if time.monotonic() - t_trigger > FRAME_BUFFER_S:
                self.dropped.append(count)
                continue
            # Expose only once the board's clock has reached the exposure time, so
            # the frame shows what was lit then (an LED switched on after the
            # trigger but before the exposure is seen, as by a real camera).
            deadline = time.monotonic() + 0.05
            board = self.rig.board
            while board.sample < sample and time.monotonic() < deadline:
                time.sleep(0.0005)
            with board.led_lock:
                # The clock lags (by under a second: not a frame from before a
                # reboot): drawn as known now, and a flash the board switches
                # on later starts after it.
                if 0 < sample - board.sample <= board.sample_rate_hz:
                    board.led_not_before = max(board.led_not_before, sample + 1)
                led_on = self.rig.led_lit_at(sample)
            number = count - (self._first_count or 0)
            if self.target is not None:  # a calibration target lies on the raceway
                frame = self.target(count)
                self._deliver(on_frame, frame, t_trigger, number)
                continue
            bounds = model.segment_boundaries_m(sample)
            if self.rig.keep_ground_truth:
                self.truth.append((count, sample, bounds))
            frame = render_worm_frame(
                bounds, self.optics, frame_index=count, led_on=led_on,
                noise_seed=self.rig.seed, posture=self.posture,
                time_s=sample / model.fs_hz,
            )  # fmt: skip
            log = self._truth_log
            if log is not None:
                delay = round(EXPOSURE_DELAY_S * self.rig.board.sample_rate_hz)
                line = (
                    f"{number},{count},{sample - delay},{sample},{int(led_on)},"
                    f"{frame_digest(frame)}\n"
                )
                try:
                    log.write(line)
                except ValueError:  # closed meanwhile by close_truth_log
                    pass
            self._deliver(on_frame, frame, t_trigger, number)

    def _deliver(
        self,
        on_frame: FrameCallback,
        frame: np.ndarray,
        t_trigger: float,
        number: int,
    ) -> None:
        delay = t_trigger + READOUT_LATENCY_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        self.frames_read += 1
        self.latest = (frame, now)
        self.frame_number = number
        on_frame(frame, now)


def write_sim_video(
    path: str,
    model,
    *,
    fps: float = 60.0,
    duration_s: float = 2.0,
    optics: CameraOptics | None = None,
) -> np.ndarray:
    """Render the model's worm to a lossless video file (FFV1 in Matroska).

    Returns the ground-truth segment boundaries of every frame, ``(n, n_seg+1)``
    metres. Frame k shows sample ``round(k · fs / fps)``. A worm that bends or
    crawls is drawn in its posture (``posture.boundaries_xy_m`` places it).
    """
    import cv2

    o = optics or CameraOptics()
    n = round(duration_s * fps)
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter.fourcc(*"FFV1"), fps, (o.width_px, o.height_px), False
    )
    if not writer.isOpened():
        raise OSError(f"cannot write a lossless video at {path}")
    truth = []
    posture: Posture | None = Posture(model)
    if posture is not None and posture.still:
        posture = None
    try:
        for k in range(n):
            sample = round(k * model.fs_hz / fps)
            bounds = model.segment_boundaries_m(sample)
            truth.append(bounds)
            writer.write(
                render_worm_frame(
                    bounds,
                    o,
                    frame_index=k,
                    noise_seed=model.seed,
                    posture=posture,
                    time_s=sample / model.fs_hz,
                )
            )
    finally:
        writer.release()
    return np.array(truth)
