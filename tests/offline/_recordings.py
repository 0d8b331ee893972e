"""Recordings of a simulated worm written straight to disk for the export and
input tests: the simulator's worm model (which shares no code with the
analysis) rendered to ADC counts, written by the real ``RecordingWriter``, with
lost samples, per-channel calibrated gains and stimuli on two pairs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.sim import RacewayGeometry, WormModel, WormParams, to_adc_counts
from rig.recording import RecordingWriter, schemas

FS = 30_000
GAIN = 1000
VOLTS_PER_COUNT = 5.0 / 65536 / GAIN  # 16-bit ADC over 5 Vpp, after the gain
CALIBRATED = np.array([1.0, 1.02, 0.97, 1.01])  # per channel, against nominal
MGF_M_PER_S, LGF_M_PER_S = 30.0, 15.0


@dataclass(frozen=True)
class WormRecording:
    """A recording folder and what went into it."""

    path: Path
    first_sample: int
    onsets: list[int]  # stimulus sample numbers
    durations_s: list[float]
    pairs: list[int]
    lost: tuple[int, int] | None  # (first sample, n) of the gap
    uv_per_count: np.ndarray  # per channel
    positions_mm: np.ndarray


def worm_recording(
    folder: Path,
    *,
    n_stimuli: int = 12,
    first_sample: int = 123_457,
    gap: bool = True,
    calibrated: bool = True,
    seed: int = 4,
) -> WormRecording:
    """Write a recording of ``n_stimuli`` 5 Vpp pulses 0.5 s apart; with ``gap``,
    0.1 s of samples is lost across the sixth stimulus's epoch."""
    geometry = RacewayGeometry()
    model = _worm(geometry, seed)
    step = FS // 2
    onsets = [first_sample + FS // 4 + k * step for k in range(n_stimuli)]
    durations = [(3e-3, 2e-3)[k % 2] for k in range(n_stimuli)]
    pairs = [k % 2 for k in range(n_stimuli)]
    for onset, duration in zip(onsets, durations, strict=True):
        model.stimulate(onset, 5.0, duration)
    n = FS // 4 + max(n_stimuli, 1) * step
    counts = to_adc_counts(model.render(first_sample, n), gain=GAIN)
    uv = VOLTS_PER_COUNT * 1e6 * (CALIBRATED if calibrated else np.ones(4))
    metadata = {
        "acquisition": {"gain": GAIN, "volts_per_count_nominal": VOLTS_PER_COUNT},
        "geometry": {
            "pair_centres_m": geometry.pair_centres_m().tolist(),
            "head_on_raceway_m": geometry.head_on_raceway_m,
        },
        "calibrations": {"gain": {"uv_per_count": uv.tolist()}} if calibrated else None,
    }
    lost = None
    with RecordingWriter.create(
        folder, n_channels=4, sample_rate_hz=float(FS), metadata=metadata
    ) as writer:
        if gap and n_stimuli >= 6:
            cut = onsets[5] + 300 - first_sample  # inside the sixth's epoch
            lost = (first_sample + cut, FS // 10)
            writer.append_samples(first_sample, counts[:cut])
            rest = cut + FS // 10
            writer.append_samples(first_sample + rest, counts[rest:])
        else:
            writer.append_samples(first_sample, counts)
        for k, (onset, duration, pair) in enumerate(
            zip(onsets, durations, pairs, strict=True)
        ):
            writer.append_event(
                onset,
                "stim_delivered",
                amplitude_vpp=4.98,
                commanded_vpp=5.0,
                requested_vpp=5.0,
                duration_s=duration,
                pair=pair,
                polarity=0,
                pulse_index=0,
            )
            writer.append_event(onset + 10, "log", level=20, message=f"pulse {k}")
    assert schemas.recording_problems(folder) == []  # every example follows the schemas
    return WormRecording(
        folder,
        first_sample,
        onsets,
        durations,
        pairs,
        lost,
        uv,
        geometry.pair_centres_m() * 1000,
    )


def sites_recording(
    folder: Path,
    configurations: list[tuple[int, int | None]],
    *,
    n_channels: int = 8,
    amplitude_vpp: float = 5.5,
    duration_s: float = 1e-3,
    seed: int = 18,
) -> Path:
    """A recording over sites: one ``amplitude_vpp`` × ``duration_s`` pulse
    per (cathode, anode) in ``configurations`` (None: the common return),
    0.5 s apart, from the simulator's worm model on ``n_channels`` pairs
    spread along the body (RacewayGeometry.for_channels), its spikes starting
    under each cathode and travelling both ways; version-3 events (cathode,
    anode) and the stimulation electrodes' positions in the metadata."""
    geometry = RacewayGeometry.for_channels(n_channels)
    model = _worm(geometry, seed)
    step = FS // 2
    first = 1000
    onsets = [first + FS // 4 + k * step for k in range(len(configurations))]
    for onset, (cathode, anode) in zip(onsets, configurations, strict=True):
        model.stimulate(onset, amplitude_vpp, duration_s, cathode=cathode, anode=anode)
    n = FS // 4 + len(configurations) * step
    counts = to_adc_counts(model.render(first, n), gain=GAIN)
    metadata = {
        "acquisition": {"gain": GAIN, "volts_per_count_nominal": VOLTS_PER_COUNT},
        "geometry": {
            "pair_centres_m": geometry.pair_centres_m().tolist(),
            "stim_electrodes_m": list(geometry.stim_electrodes_m),
            "head_on_raceway_m": geometry.head_on_raceway_m,
        },
        "calibrations": {
            "gain": {"uv_per_count": [VOLTS_PER_COUNT * 1e6] * n_channels}
        },
    }
    with RecordingWriter.create(
        folder, n_channels=n_channels, sample_rate_hz=float(FS), metadata=metadata
    ) as writer:
        writer.append_samples(first, counts)
        for onset, (cathode, anode) in zip(onsets, configurations, strict=True):
            writer.append_event(
                onset, "stim_delivered", amplitude_vpp=amplitude_vpp,
                commanded_vpp=amplitude_vpp, requested_vpp=amplitude_vpp,
                duration_s=duration_s, cathode=cathode, anode=anode, polarity=0,
                pulse_index=0,
            )  # fmt: skip
    assert schemas.recording_problems(folder) == []
    return folder


def _worm(geometry: RacewayGeometry, seed: int) -> WormModel:
    """The simulator's worm with the fibres' known speeds and no habituation."""
    return WormModel(
        WormParams(
            mgf_velocity_m_per_s=MGF_M_PER_S,
            lgf_velocity_m_per_s=LGF_M_PER_S,
            habituation_per_stimulus=0.0,
        ),
        geometry,
        fs_hz=FS,
        seed=seed,
    )
