"""Analysis speed and accuracy figures.

* ``analysis_realtime_factor``: the whole ephys pipeline — zero-phase band-pass of
  every sample, spike detection on every sample, per-stimulus artifact removal,
  volley timing and conduction velocity for one stimulus per second — on one hour
  of 4 ch × 30 kS/s, one core; recording seconds per second of compute.
* ``detect_msamples_per_s``: the Numba detector, channel-samples per second (M).
* ``detect_vs_spikeinterface``: our detector's throughput over SpikeInterface's
  ``detect_peaks`` (method ``by_channel``) on the same filtered data, measured side
  by side. SpikeInterface is installed into the venv for this benchmark only; if it
  cannot be installed the figure is NaN and the reason is printed.
* ``tracking_fps_640x480``: the straight-worm strip tracker
  (``analysis.tracking``), frames per second, one core, best of 3.
* ``tracking_error_mm``: its RMS error of tracked segment positions against the
  truth on rendered video of a straight worm with lens distortion and noise
  (overlapping twitches at 1 Hz).
* ``tracking_midline_fps_640x480``, ``tracking_midline_fps_bending``: the
  midline tracker (``analysis.midline``, what live and offline analysis use) on
  the straight worm and on a bending, crawling one; frames per second.
* ``tracking_error_midline_mm``: the midline tracker's RMS error (distance on
  the raceway) on the straight worm's video.
* ``tracking_error_bending_mm``: the same on a worm that bends (0.5 rad, the
  bend travelling down the body), crawls (3 mm/s) and twitches at 1 Hz, lens
  distortion and noise; ``displacement_error_bending_mm``: RMS error of its
  bands' displacement along the body (from the first 3 frames) against the
  truth.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import numpy as np

from analysis.ap_detect import detect_spikes, noise_mad
from analysis.artifact import PulseMemory
from analysis.filters import bandpass_sos, filtfilt
from analysis.midline import MidlineTracker, track_midline
from analysis.pipeline import Stimulus, analyse_stimuli
from analysis.tracking import track_segments
from firmware_bridge.sim import CameraOptics, WormModel, WormParams, render_worm_frame
from firmware_bridge.sim.posture import Posture, body_positions_m, boundaries_xy_m

FS = 30_000


def minute_of_data() -> tuple[np.ndarray, list[int], np.ndarray]:
    """One minute of 4-channel µV data with a stimulus every second."""
    model = WormModel(WormParams(), seed=1, fs_hz=FS)
    onsets = [FS // 2 + k * FS for k in range(60)]
    for k, onset in enumerate(onsets):
        model.stimulate(onset, 2.5 + (k % 8) * 0.5, 3e-3)
    data = (model.render(0, 60 * FS) * 1e6).astype(np.float32)
    return data, onsets, model.geometry.pair_centres_m()


def pipeline_seconds(data, onsets, positions, minutes: int) -> float:
    """Run the pipeline over ``minutes`` of data (the minute tiled); return seconds."""
    sos = bandpass_sos(FS)
    noise = None
    memory = PulseMemory()  # one recording: its pulses are learnt once
    started = time.perf_counter()
    for _ in range(minutes):
        filtered = filtfilt(data, sos)
        if noise is None:
            noise = noise_mad(filtered)
        detect_spikes(filtered, fs_hz=FS, noise=noise)
        stimuli = [Stimulus(o, 3.0, 3e-3) for o in onsets]
        analyse_stimuli(
            lambda first, n: data[first : first + n],
            stimuli,
            fs_hz=FS,
            positions_m=positions,
            pulse_memory=memory,
        )
    return time.perf_counter() - started


def spikeinterface_rate(filtered: np.ndarray, noise: np.ndarray) -> tuple[float, str]:
    """Channel-samples per second of SpikeInterface's detect_peaks, or NaN + reason."""
    if importlib.util.find_spec("spikeinterface") is None:
        print("installing spikeinterface for this benchmark only ...", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "spikeinterface"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            return float(
                "nan"
            ), f"spikeinterface could not be installed: {result.stderr[-300:]}"
    import spikeinterface.core as si
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    recording = si.NumpyRecording([filtered.astype(np.float32)], sampling_frequency=FS)
    # One core, like ours; the same threshold (5 noise SDs), sign and dead time.
    kwargs = dict(
        method="by_channel",
        method_kwargs=dict(
            peak_sign="neg",
            detect_threshold=5,
            exclude_sweep_ms=1.0,
            noise_levels=noise.astype(np.float32),
        ),
        job_kwargs=dict(n_jobs=1, chunk_duration="10s", progress_bar=False),
    )
    detect_peaks(recording, **kwargs)  # warm-up (numba compile)
    started = time.perf_counter()
    peaks = detect_peaks(recording, **kwargs)
    elapsed = time.perf_counter() - started
    return filtered.size / elapsed, f"{len(peaks)} peaks"


def tracking_figures(quick: bool) -> tuple[float, float]:
    """(frames per second, RMS error mm) on rendered 640×480 video."""
    optics = CameraOptics(k1=-0.06)
    model = WormModel(WormParams(), seed=3, fs_hz=FS)
    seconds = 2 if quick else 6
    for k in range(seconds):
        model.stimulate(3000 + k * FS, 5.0, 3e-3)
    samples = np.arange(0, seconds * FS, FS // 60)
    truth = model.segment_boundaries_m(samples) * 1000
    frames = [
        render_worm_frame(truth[i] / 1000, optics, frame_index=i)
        for i in range(samples.size)
    ]
    kwargs = dict(
        px_per_mm=optics.px_per_mm,
        origin_px=optics.origin_px[0],
        camera_matrix=optics.camera_matrix(),
        dist_coeffs=optics.dist_coeffs(),
    )
    track_segments(frames[:5], **kwargs)  # warm-up
    best = np.inf
    for _ in range(3):
        started = time.perf_counter()
        track = track_segments(frames, **kwargs)
        best = min(best, time.perf_counter() - started)
    fps = len(frames) / best
    first = track.positions_mm[0]
    index = np.array([np.argmin(np.abs(truth[0] - x)) for x in first])
    error = track.positions_mm - truth[:, index]
    return fps, float(np.sqrt(np.nanmean(error**2)))


def run(quick: bool = False) -> dict[str, float]:
    """All analysis figures."""
    data, onsets, positions = minute_of_data()
    pipeline_seconds(
        data[: 2 * FS], [o for o in onsets if o < FS], positions, 1
    )  # warm-up
    minutes = 1 if quick else 60
    elapsed = pipeline_seconds(data, onsets, positions, minutes)
    filtered = filtfilt(data, bandpass_sos(FS))
    noise = noise_mad(filtered)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        detect_spikes(filtered, fs_hz=FS, noise=noise)
        best = max(best, filtered.size / (time.perf_counter() - started))
    si_rate, note = spikeinterface_rate(filtered, noise)
    print(f"spikeinterface: {note}")
    fps, error = tracking_figures(quick)
    midline = midline_figures(quick)
    return {
        "analysis_realtime_factor": minutes * 60.0 / elapsed,
        "detect_msamples_per_s": best / 1e6,
        "spikeinterface_detect_msamples_per_s": si_rate / 1e6,
        "detect_vs_spikeinterface": best / si_rate,
        "tracking_fps_640x480": fps,
        "tracking_error_mm": error,
        **midline,
    }


def filmed(quick: bool, params: WormParams):
    """Rendered video (lens distortion, noise) of a worm twitching at 1 Hz,
    with the truth: along the body and on the raceway (mm) at every frame."""
    optics = CameraOptics(k1=-0.06)
    model = WormModel(params, seed=3, fs_hz=FS)
    seconds = 2 if quick else 6
    for k in range(seconds):
        model.stimulate(3000 + k * FS, 5.0, 3e-3)
    samples = np.arange(0, seconds * FS, FS // 60)
    posture = Posture(model)
    bounds = model.segment_boundaries_m(samples)
    frames = [
        render_worm_frame(
            bounds[i], optics, frame_index=i, time_s=samples[i] / FS,
            posture=None if posture.still else posture,
        )
        for i in range(samples.size)
    ]  # fmt: skip
    along = body_positions_m(model, samples) * 1000
    xy = boundaries_xy_m(model, samples) * 1000
    return optics, frames, along, xy


def midline_figures(quick: bool) -> dict[str, float]:
    """Speed and accuracy of the midline tracker, straight and bending worm."""
    out = {}
    bending = WormParams(bend_amplitude_rad=0.5, crawl_speed_m_per_s=0.003)
    for name, params in (("640x480", WormParams()), ("bending", bending)):
        optics, frames, along, xy = filmed(quick, params)
        kwargs = dict(
            px_per_mm=optics.px_per_mm,
            origin_px=optics.origin_px,
            camera_matrix=optics.camera_matrix(),
            dist_coeffs=optics.dist_coeffs(),
        )
        track_midline(frames[:5], **kwargs)  # warm-up (Numba)
        best = np.inf
        for _ in range(3):
            tracker = MidlineTracker(**kwargs)
            started = time.perf_counter()
            for frame in frames:
                tracker.process(frame)
            best = min(best, time.perf_counter() - started)
        out[f"tracking_midline_fps_{name}"] = len(frames) / best
        track = track_midline(frames, **kwargs)
        first = track.positions_mm[0]
        index = np.array([np.argmin(np.abs(along[0] - x)) for x in first])
        miss = np.hypot(*(track.xy_mm - xy[:, index]).transpose(2, 0, 1))
        error = float(np.sqrt(np.nanmean(miss**2)))
        if name == "bending":
            out["tracking_error_bending_mm"] = error
            moved = track.positions_mm - np.nanmean(track.positions_mm[:3], axis=0)
            truth = along[:, index] - along[:3, index].mean(axis=0)
            out["displacement_error_bending_mm"] = float(
                np.sqrt(np.nanmean((moved - truth) ** 2))
            )
        else:
            out["tracking_error_midline_mm"] = error
    return out
