"""NWB export of a 10-minute recording: time and size (docs/export.md).

The recording is written by the real ``RecordingWriter``: 10 min of 4 ch ×
30 kS/s int16 (the simulated worm's signal and noise at the board's nominal
0.076 µV per count: one minute rendered by the worm model, a stimulus a
second, tiled), 600 stimuli and trials, a 60 fps video with its frame table
(a small stand-in picture: the export references the video, it never reads
its pixels), a subject and a session.

* ``export_nwb_10min_s``: wall time of ``export_nwb(..., analysis=False)``
  (``neurorig export --nwb --no-analysis``): samples gzip-compressed and
  chunked, events, trials, the video's timestamps.
* ``export_nwb_10min_mb``: the NWB file's size; ``export_nwb_compression``:
  samples.i16 bytes over the NWB file's bytes.
* ``export_nwb_10min_analysis_s``: the same with the analysis (the ephys
  pipeline over the 600 stimuli; the stand-in video has no raceway geometry,
  so it is not tracked: see ``tracking_fps_640x480`` for that part).
* ``samples_10min_mb``: the recording's samples.i16, for comparison.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from firmware_bridge.sim import WormModel, WormParams
from rig.export import export_nwb
from rig.recording import RecordingWriter
from rig.recording.subject import SessionInfo, Subject

FS = 30_000
VOLTS_PER_COUNT = 5.0 / 2**16 / 1000  # the board's 16-bit ADC at gain 1000
FPS = 60


def one_minute() -> tuple[np.ndarray, list[int], np.ndarray]:
    """A minute of int16 counts with a stimulus a second, and the positions."""
    model = WormModel(WormParams(), seed=3, fs_hz=FS)
    onsets = [FS // 2 + k * FS for k in range(60)]
    for k, onset in enumerate(onsets):
        model.stimulate(onset, 2.5 + (k % 8) * 0.5, 3e-3)
    volts = model.render(0, 60 * FS)
    counts = np.clip(np.rint(volts / VOLTS_PER_COUNT), -32768, 32767).astype(np.int16)
    return counts, onsets, model.geometry.pair_centres_m()


def make_recording(folder: Path, minutes: int) -> Path:
    """A ``minutes``-long recording in ``folder``; returns its path."""
    counts, onsets, positions = one_minute()
    metadata = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(),
        "software": {"name": "neurorig", "version": "bench"},
        "acquisition": {"gain": 1000, "volts_per_count_nominal": VOLTS_PER_COUNT},
        "geometry": {"pair_centres_m": [float(p) for p in positions]},
        "subject": Subject(
            subject_id="bench-01",
            species="Lumbricus terrestris",
            sex="O",
            description="hermaphrodite",
            age="P90D",
        ).to_dict(),
        "session": SessionInfo(experimenter=("Bench, Mark",)).to_dict(),
    }
    writer = RecordingWriter.create(
        folder, n_channels=4, sample_rate_hz=FS, metadata=metadata
    )
    first = 1_000_000
    for minute in range(minutes):
        start = first + minute * 60 * FS
        for second in range(60):
            block = counts[second * FS : (second + 1) * FS]
            writer.append_samples(start + second * FS, block)
        for k, onset in enumerate(onsets):
            sample = start + onset
            amplitude = 2.5 + (k % 8) * 0.5
            writer.append_event(
                sample, "trial", index=minute * 60 + k, amplitude_vpp=amplitude,
                duration_s=3e-3, pair=0, polarity=0,
            )  # fmt: skip
            writer.append_event(
                sample, "stim_delivered", amplitude_vpp=amplitude * 0.99,
                commanded_vpp=amplitude, requested_vpp=amplitude, duration_s=3e-3,
                pair=0, polarity=0, pulse_index=0,
            )  # fmt: skip
    n_frames = minutes * 60 * FPS
    picture = np.full((60, 80), 128, dtype=np.uint8)  # a stand-in: never read
    step = FS // FPS
    for k in range(n_frames):
        writer.append_frame(picture, None, k / FPS)
    writer.write_frame_samples(
        [(k, first + k * step, "trigger", k) for k in range(n_frames)]
    )
    writer.close("completed")
    return folder


def run(quick: bool = False) -> dict[str, float]:
    """Figures for a 10-minute recording (1 minute with ``quick``)."""
    minutes = 1 if quick else 10
    root = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        print(f"writing a {minutes}-minute recording ...", flush=True)
        recording = make_recording(root / "recording", minutes)
        out = root / "out.nwb"
        started = time.perf_counter()
        export_nwb(recording, out, analysis=False)
        data_s = time.perf_counter() - started
        size_mb = out.stat().st_size / 1e6
        samples_mb = (recording / "samples.i16").stat().st_size / 1e6
        started = time.perf_counter()
        export_nwb(recording, root / "analysed.nwb", analysis=True)
        analysis_s = time.perf_counter() - started
        key = f"{minutes}min"
        return {
            f"export_nwb_{key}_s": data_s,
            f"export_nwb_{key}_mb": size_mb,
            "export_nwb_compression": samples_mb / size_mb,
            f"export_nwb_{key}_analysis_s": analysis_s,
            f"samples_{key}_mb": samples_mb,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
