"""Any recording metadata, index and events open as a recording or are refused
with RecordingFormatError naming the file; never another exception, never a
hang. An opened recording's numbers are usable: sample numbers increase, each
stimulus has a whole sample number and a positive duration."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import rig.recording
from rig.offline.load import load_recording
from rig.recording import RecordingFormatError
from tests.fuzz._toml import FUZZ, SCALARS

N_CH, N_ROWS, FIRST = 4, 300, 1000
METADATA = {
    "format": "neurorig-recording",
    "schema_version": 1,
    "status": "completed",
    "n_channels": N_CH,
    "sample_rate_hz": 30000.0,
    "acquisition": {"volts_per_count_nominal": 7.6e-8, "gain": 1000},
    "geometry": {
        "pair_centres_m": [0.0375, 0.0575, 0.0775, 0.0975],
        "head_on_raceway_m": 0.01,
        "camera": {"px_per_mm": 3.2, "origin_px": [40.0]},
    },
    "calibrations": {
        "gain": {"uv_per_count": [0.0763] * N_CH},
        "camera": {"px_per_mm": 3.2, "camera_matrix": [[900.0, 0, 320],
                   [0, 900.0, 240], [0, 0, 1]], "dist_coeffs": [0.0] * 5},
    },
}  # fmt: skip
# Nested values the offline analysis reads (rig.offline.load)
NESTED = ["geometry.pair_centres_m", "geometry.head_on_raceway_m", "geometry.camera",
          "geometry.camera.px_per_mm", "geometry.camera.origin_px",
          "acquisition.volts_per_count_nominal", "calibrations.gain",
          "calibrations.gain.uv_per_count", "calibrations.camera.px_per_mm",
          "calibrations.camera.camera_matrix", "calibrations.camera.dist_coeffs"]  # fmt: skip
JSON_SCALARS = st.one_of(
    SCALARS.filter(lambda v: not (isinstance(v, int) and abs(v) > 2**70)), st.none()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["pair_centres_m", "volts_per_count_nominal",
                                         "uv_per_count", "px_per_mm", "origin_px",
                                         "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)  # fmt: skip


def write(folder, metadata, index_lines, event_lines) -> None:
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps(metadata))
    samples = np.arange(N_ROWS * N_CH, dtype="<i2").reshape(N_ROWS, N_CH)
    (folder / "samples.i16").write_bytes(samples.tobytes())
    (folder / "index.jsonl").write_text("".join(f"{line}\n" for line in index_lines))
    (folder / "events.jsonl").write_text("".join(f"{line}\n" for line in event_lines))


def opens_or_refuses(folder) -> None:
    try:
        rec = rig.recording.open(folder)
    except RecordingFormatError as exc:
        assert str(folder) in str(exc)
        return
    loads_for_analysis_or_refuses(folder)
    assert rec.n_channels >= 1 and math.isfinite(rec.sample_rate_hz)
    assert rec.sample_rate_hz > 0
    numbers = rec.sample_numbers()
    assert (np.diff(numbers) > 0).all() and (numbers >= 0).all()
    for e in rec.events_of("stim_delivered"):
        assert type(e["sample"]) is int and e["sample"] >= 0
        assert e.get("duration_s", 1.0) > 0


def loads_for_analysis_or_refuses(folder) -> None:
    """What ``neurorig analyze`` reads of an opened recording: a ValueError
    naming the folder, or a source whose numbers the analysis can use."""
    try:
        source = load_recording(folder)
    except ValueError as exc:
        assert str(folder) in str(exc)
        return
    assert source.fs_hz > 0 and source.n_channels == source.positions_m.size
    assert np.isfinite(source.positions_m).all()
    assert np.isfinite(source.clip_uv).all() and (source.clip_uv > 0).all()
    assert math.isfinite(source.head_on_raceway_m) and math.isfinite(source.origin_px)
    assert source.px_per_mm is None or 0 < source.px_per_mm < math.inf
    for stim in source.stimuli:
        assert type(stim.onset_sample) is int and stim.duration_s > 0


RUN = json.dumps({"kind": "run", "row": 0, "first_sample": FIRST})
STIM = {"sample": FIRST + 100, "kind": "stim_delivered", "amplitude_vpp": 4.0,
        "duration_s": 0.003, "pair": 0}  # fmt: skip


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from([*METADATA, *NESTED, *NESTED]),
        JSON_VALUES, max_size=3,
    )
)  # fmt: skip
def test_metadata_values_open_or_are_refused(tmp_path_factory, changes):
    metadata = json.loads(json.dumps(METADATA))
    for key, value in changes.items():
        *tables, leaf = key.split(".")
        target = metadata
        for table in tables:  # (an earlier change may have replaced a table)
            target = target.get(table) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[leaf] = value
    folder = tmp_path_factory.mktemp("rec") / "r"
    write(folder, metadata, [RUN], [json.dumps(STIM)])
    opens_or_refuses(folder)


INDEX_RECORDS = st.fixed_dictionaries(
    {"kind": st.sampled_from(["run", "run", "gap", "other"])},
    optional={
        "row": st.one_of(st.integers(-5, N_ROWS + 5), JSON_SCALARS),
        "first_sample": st.one_of(st.integers(-5, 10**6), JSON_SCALARS),
        "n_lost": st.one_of(st.integers(-5, 500), JSON_SCALARS),
    },
)
EVENT_RECORDS = st.fixed_dictionaries(
    {"kind": st.sampled_from(["stim_delivered", "stim_delivered", "trial", "log"])},
    optional={
        key: st.one_of(st.integers(-5, FIRST + 2 * N_ROWS), JSON_VALUES)
        for key in ("sample", "duration_s", "amplitude_vpp", "pair", "polarity")
    },
)
LINES = st.one_of(
    st.just(RUN),
    INDEX_RECORDS.map(json.dumps),
    EVENT_RECORDS.map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=10),
)


@FUZZ
@given(
    index=st.lists(st.one_of(st.just(RUN), INDEX_RECORDS.map(json.dumps), LINES),
                   max_size=4),
    events=st.lists(st.one_of(EVENT_RECORDS.map(json.dumps), LINES), max_size=5),
)  # fmt: skip
def test_index_and_events_open_or_are_refused(tmp_path_factory, index, events):
    folder = tmp_path_factory.mktemp("rec") / "r"
    write(folder, METADATA, index, events)
    opens_or_refuses(folder)


@FUZZ
@given(data=st.binary(max_size=120), which=st.sampled_from(
    ["metadata.json", "index.jsonl", "events.jsonl", "frames.csv",
     "frame_samples.csv"]))  # fmt: skip
def test_any_bytes_in_any_file_open_or_are_refused(tmp_path_factory, data, which):
    folder = tmp_path_factory.mktemp("rec") / "r"
    write(folder, METADATA, [RUN], [json.dumps(STIM)])
    (folder / which).write_bytes(data)
    opens_or_refuses(folder)
