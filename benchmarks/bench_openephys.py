"""Open Ephys export of a 10-minute recording (4 channels at 30 kS/s, a stimulus a
second): wall time when the samples are hard-linked (no gaps) and when they are
copied (one gap: two runs), and the size of what is written besides the samples.

``python benchmarks/run.py openephys`` (``--quick``: 1 minute)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rig.export.openephys import export_openephys
from rig.recording import RecordingWriter

FS = 30_000
N_CH = 4


def _recording(folder: Path, minutes: float, gap: bool) -> None:
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * FS)
    block = FS  # write a second at a time, as the recorder does
    with RecordingWriter.create(
        folder, n_channels=N_CH, sample_rate_hz=float(FS),
        metadata={"acquisition": {"volts_per_count_nominal": 7.62939453125e-08}},
    ) as writer:  # fmt: skip
        first = 1000
        for start in range(0, n, block):
            if gap and start == n // 2:
                first += FS // 10  # 0.1 s lost: a second run
            chunk = rng.integers(-300, 300, (min(block, n - start), N_CH), np.int16)
            writer.append_samples(first + start, chunk)
            writer.append_event(
                first + start + FS // 2, "stim_delivered", amplitude_vpp=4.0,
                commanded_vpp=4.0, requested_vpp=4.0, duration_s=3e-3, pair=0,
                polarity=0, pulse_index=0,
            )  # fmt: skip


def _size_mb(folder: Path, skip: str) -> float:
    return (
        sum(
            p.stat().st_size
            for p in folder.rglob("*")
            if p.is_file() and p.name != skip
        )
        / 1e6
    )


def run(quick: bool = False) -> dict[str, float]:
    """Export times (s) and the export's own size (MB, samples aside)."""
    minutes = 1.0 if quick else 10.0
    root = Path(tempfile.mkdtemp(prefix="bench-openephys-"))
    figures: dict[str, float] = {"openephys_recording_minutes": minutes}
    try:
        for gap, label in ((False, "linked"), (True, "copied")):
            rec = root / f"rec-{label}"
            _recording(rec, minutes, gap)
            started = time.perf_counter()
            done = export_openephys(rec, root / f"oe-{label}")
            figures[f"openephys_export_s_{label}"] = time.perf_counter() - started
            assert done.linked == (not gap)
            figures[f"openephys_extra_mb_{label}"] = _size_mb(
                done.folder, "continuous.dat"
            )
        figures["openephys_samples_mb"] = (rec / "samples.i16").stat().st_size / 1e6
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, value in figures.items():
        print(f"  {name}: {value:.3g}")
    return figures
