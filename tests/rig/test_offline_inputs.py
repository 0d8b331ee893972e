"""Offline analysis of inputs that disagree with themselves: electrode
positions against the data, stimuli outside the samples, values out of range.
Each gives one clear line naming the file or option, or a warning that says
which stimuli were not analysed and why; never a confident wrong result.

The data are the simulated worm's (``firmware_bridge.sim``, which shares no code
with the analysis), written as real files (a Spike Recorder pair, a recording
folder) and read through ``neurorig analyze``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.sim import RacewayGeometry, WormModel, WormParams, to_adc_counts
from rig.offline.direction import reversed_order
from rig.offline.spike_recorder import write_spike_recorder

ROOT = Path(__file__).resolve().parents[2]
FS = 20_000
N_STIMULI = 4
VELOCITY_M_PER_S = 12.0


def neurorig(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *args, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("log: ")]


@pytest.fixture(scope="module")
def worm():
    """(counts (n, 4), onsets, pair centres mm) of a worm stimulated 4 times."""
    geometry = RacewayGeometry()
    model = WormModel(
        WormParams(
            mgf_velocity_m_per_s=VELOCITY_M_PER_S,
            lgf_velocity_m_per_s=VELOCITY_M_PER_S / 2,
            habituation_per_stimulus=0.0,
        ),
        geometry,
        fs_hz=FS,
        seed=8,
    )
    onsets = [FS // 2 + k * FS for k in range(N_STIMULI)]
    for onset in onsets:
        model.stimulate(onset, 4.0, 3e-3)
    counts = to_adc_counts(model.render(0, onsets[-1] + FS // 2), gain=1000)
    return counts, onsets, geometry.pair_centres_m() * 1000


def wav_pair(folder: Path, counts, markers) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / "worm.wav"
    write_spike_recorder(wav, counts, FS, markers)
    return wav


def mm(positions) -> str:
    return ",".join(f"{p:g}" for p in positions)


def analysed(out: Path) -> list[dict]:
    return json.loads(out.read_text())["stimuli"]


def test_a_rig_wired_tail_first_is_analysed_right(tmp_path, worm):
    """Channels in the reverse order, positions saying so: the same velocity and
    per-pair latencies as the rig wired head-first (propagation comes out
    away from the head)."""
    counts, onsets, centres = worm
    markers = [("1", o / FS) for o in onsets]
    outs = {}
    for name, data, positions in (
        ("forward", counts, centres),
        ("tail-first", counts[:, ::-1], centres[::-1]),
    ):
        wav = wav_pair(tmp_path / name, data, markers)
        outs[name] = tmp_path / f"{name}.json"
        done = neurorig(
            "analyze", str(wav), "--electrode-positions-mm", mm(positions),
            "--json", str(outs[name]),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    forward, tail_first = analysed(outs["forward"]), analysed(outs["tail-first"])
    assert all(s["responded"] for s in forward)
    for f, t in zip(forward, tail_first, strict=True):
        assert t["conduction_velocity_m_per_s"] == pytest.approx(
            f["conduction_velocity_m_per_s"]
        )
        assert t["conduction_velocity_m_per_s"] == pytest.approx(
            VELOCITY_M_PER_S, rel=0.05
        )
        assert t["latency_s"] == pytest.approx(f["latency_s"][::-1])


def test_positions_against_the_channel_order_are_refused(tmp_path, worm):
    counts, onsets, centres = worm
    wav = wav_pair(tmp_path, counts, [("1", o / FS) for o in onsets])
    done = neurorig(
        "analyze", str(wav), "--electrode-positions-mm", mm(centres[::-1]),
        "--json", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert done.returncode == 2
    [line] = error_lines(done.stderr)
    assert line.startswith(
        "neurorig: error: --electrode-positions-mm = [97.5, 77.5, 57.5, 37.5] mm "
        "contradicts the data: 4 of 4 stimuli show no propagating AP"
    )
    assert "the AP reaches channel 0 first, given as 97.5 mm" in line
    assert not (tmp_path / "out.json").exists()


def test_reversed_order_puts_a_list_written_backwards_right():
    assert reversed_order(np.array([97.5, 77.5, 57.5, 37.5])).tolist() == [
        37.5, 57.5, 77.5, 97.5,
    ]  # fmt: skip
    # uneven spacing and a shuffled order: distance ranks mirrored
    assert reversed_order(np.array([50.0, 10.0, 20.0])).tolist() == [10.0, 50.0, 20.0]


def test_a_marker_after_the_end_of_the_wav_is_refused(tmp_path, worm):
    counts, onsets, centres = worm
    wav = wav_pair(tmp_path, counts, [("1", o / FS) for o in onsets] + [("1", 999.0)])
    done = neurorig("analyze", str(wav), "--electrode-positions-mm", mm(centres))
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"neurorig: error: {tmp_path / 'worm-events.txt'}: 1 stimulus marker(s) "
        "after the end of worm.wav, the first '1' at 999 s; allowed times 0–4 s "
        "(is it this WAV's events file?)"
    ]


def test_a_marker_too_near_the_end_is_reported_not_silently_dropped(tmp_path, worm):
    counts, onsets, centres = worm
    end_s = counts.shape[0] / FS
    wav = wav_pair(
        tmp_path, counts, [("1", o / FS) for o in onsets] + [("1", end_s - 0.005)]
    )
    out = tmp_path / "out.json"
    done = neurorig(
        "analyze", str(wav), "--electrode-positions-mm", mm(centres), "--json", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert [s["analysed"] for s in analysed(out)] == [True] * N_STIMULI + [False]
    assert (
        f"warning: {tmp_path / 'worm-events.txt'}: 1 of 5 stimuli not analysed: the "
        "samples of their responses are outside the recording (0–4 s of "
        f"worm.wav) or were lost; stimuli at sample {counts.shape[0] - 100}"
    ) in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_uv_per_count_must_be_a_finite_number_above_zero(tmp_path, worm, value):
    counts, onsets, centres = worm
    wav = wav_pair(tmp_path, counts[:FS], [("1", 0.5)])
    done = neurorig(
        "analyze", str(wav), "--electrode-positions-mm", mm(centres),
        "--uv-per-count", value,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--uv-per-count: {value} must be a finite number > 0" in done.stderr


# --- a recording folder --------------------------------------------------------

FIRST = 1000  # the board's sample number of the first row


def recording(folder: Path, worm, *, metadata=None, stimuli=None) -> Path:
    """A recording folder as the recorder writes it (one run, no video)."""
    counts, onsets, centres = worm
    folder.mkdir()
    meta = {
        "format": "neurorig-recording",
        "schema_version": 1,
        "status": "completed",
        "n_channels": 4,
        "sample_rate_hz": float(FS),
        "acquisition": {"volts_per_count_nominal": 5.0 / 65536 / 1000, "gain": 1000},
        "geometry": {"pair_centres_m": [c / 1000 for c in centres]},
    }
    meta.update(metadata or {})
    (folder / "metadata.json").write_text(json.dumps(meta))
    (folder / "samples.i16").write_bytes(np.ascontiguousarray(counts, "<i2").tobytes())
    (folder / "index.jsonl").write_text(
        json.dumps({"kind": "run", "row": 0, "first_sample": FIRST}) + "\n"
    )
    events = stimuli or [
        {"kind": "stim_delivered", "sample": FIRST + o, "amplitude_vpp": 4.0,
         "duration_s": 0.003, "pair": 0, "polarity": 0}
        for o in onsets
    ]  # fmt: skip
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def test_the_recording_as_written_analyses(tmp_path, worm):
    out = tmp_path / "out.json"
    done = neurorig("analyze", str(recording(tmp_path / "r", worm)), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert all(s["responded"] for s in analysed(out))


def test_metadata_positions_in_the_reverse_order_are_refused(tmp_path, worm):
    _, _, centres = worm
    folder = recording(
        tmp_path / "r",
        worm,
        metadata={"geometry": {"pair_centres_m": [c / 1000 for c in centres[::-1]]}},
    )
    done = neurorig("analyze", str(folder))
    assert done.returncode == 2
    [line] = error_lines(done.stderr)
    assert line.startswith(
        f"neurorig: error: {folder / 'metadata.json'}: geometry.pair_centres_m = "
        "[97.5, 77.5, 57.5, 37.5] mm contradicts the data"
    )


def test_a_stimulus_beyond_the_samples_is_reported(tmp_path, worm):
    counts, onsets, _ = worm
    events = [
        {"kind": "stim_delivered", "sample": FIRST + o, "amplitude_vpp": 4.0,
         "duration_s": 0.003}
        for o in [*onsets, 2**40]
    ]  # fmt: skip
    folder = recording(tmp_path / "r", worm, stimuli=events)
    out = tmp_path / "out.json"
    done = neurorig("analyze", str(folder), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert [s["analysed"] for s in analysed(out)] == [True] * N_STIMULI + [False]
    assert (
        f"warning: {folder / 'events.jsonl'}: 1 of 5 stimuli not analysed: the "
        f"samples of their responses are outside the recording (samples {FIRST}–"
        f"{FIRST + counts.shape[0] - 1}) or were lost; stimuli at sample "
        f"{FIRST + 2**40}"
    ) in done.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"calibrations": {"gain": {"uv_per_count": [float("nan")] * 4}}},
         "calibrations.gain.uv_per_count = [nan, nan, nan, nan]: allowed a list"),
        ({"calibrations": {"gain": {"uv_per_count": [0.07] * 3}}},
         "calibrations.gain.uv_per_count has 3 values for 4 channels"),
        ({"calibrations": {"camera": {"px_per_mm": -3}}},
         "calibrations.camera.px_per_mm = -3: allowed a finite number"),
        ({"geometry": {"pair_centres_m": [0.04, 0.06, 0.08, 0.1],
                       "head_on_raceway_m": "front"}},
         "geometry.head_on_raceway_m = 'front'; allowed 0–1 m"),
        ({"geometry": {"pair_centres_m": [0.04, 0.06, 0.08, 0.1], "camera": "top"}},
         "geometry.camera = 'top'; allowed a JSON object"),
    ],
)  # fmt: skip
def test_metadata_values_the_analysis_uses_are_checked(
    tmp_path, worm, changes, message
):
    folder = recording(tmp_path / "r", worm, metadata=changes)
    done = neurorig("analyze", str(folder))
    assert done.returncode == 2
    [line] = error_lines(done.stderr)
    assert line.startswith(f"neurorig: error: {folder / 'metadata.json'}: ")
    assert message in line


def test_a_stimulus_without_its_duration_is_refused(tmp_path, worm):
    _, onsets, _ = worm
    events = [{"kind": "stim_delivered", "sample": FIRST + onsets[0]}]
    folder = recording(tmp_path / "r", worm, stimuli=events)
    done = neurorig("analyze", str(folder))
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"neurorig: error: {folder / 'events.jsonl'}: event 1 (stim_delivered at "
        f"sample {FIRST + onsets[0]}) has no duration_s; allowed a number > 0 s "
        "(the pulse's length)"
    ]
