"""Whatever the runs, gaps and stimuli of a recording, neo reads its Open Ephys
export back exactly: every run a segment at its sample number, every sample in
µV, every stimulus on its line with its duration (Hypothesis; real files)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.export.openephys import export_openephys
from rig.recording import RecordingWriter

neo_rawio = pytest.importorskip("neo.rawio")
FS = 1000.0


@st.composite
def recordings(draw):
    n_ch = draw(st.integers(1, 5))
    runs = draw(st.lists(st.tuples(st.integers(1, 400), st.integers(1, 300)),
                         min_size=1, max_size=4))  # fmt: skip
    first = draw(st.integers(0, 10**9))
    end = first + sum(n + lost for n, lost in runs)
    stimuli = draw(
        st.lists(
            st.tuples(st.integers(first, end), st.integers(1, 40), st.integers(0, 5)),
            max_size=8,
            unique_by=lambda s: s[0],
        )
    )
    uv = draw(st.floats(0.01, 10.0))
    return n_ch, runs, first, sorted(stimuli), uv


def _no_overlap(stimuli):
    """A board delivers one stimulus at a time: none starts before one ends."""
    kept, busy_until = [], -1
    for sample, n, pair in stimuli:
        if sample >= busy_until:
            kept.append((sample, n, pair))
            busy_until = sample + n
    return kept


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(recordings())
def test_neo_reads_back_every_run_sample_and_stimulus(case):
    n_ch, runs, first, stimuli, uv = case
    stimuli = _no_overlap(stimuli)
    root = Path(tempfile.mkdtemp(prefix="oe-prop-"))
    try:
        rng = np.random.default_rng(len(runs))
        starts, blocks, sample = [], [], first
        with RecordingWriter.create(
            root / "rec", n_channels=n_ch, sample_rate_hz=FS,
            metadata={"acquisition": {"volts_per_count_nominal": uv * 1e-6}},
        ) as writer:  # fmt: skip
            for n, lost in runs:
                block = rng.integers(-32768, 32767, (n, n_ch), dtype=np.int16)
                writer.append_samples(sample, block)
                starts.append(sample)
                blocks.append(block)
                sample += n + lost
            for onset, n, pair in stimuli:
                writer.append_event(
                    onset, "stim_delivered", duration_s=n / FS, pair=pair
                )
        export_openephys(root / "rec", root / "oe")
        reader = neo_rawio.OpenEphysBinaryRawIO(str(root / "oe"))
        reader.parse_header()
        assert reader.segment_count(0) == len(runs)
        index = list(reader.header["event_channels"]["name"]).index("stimuli")
        found = []
        for seg, (start, block) in enumerate(zip(starts, blocks, strict=True)):
            assert reader.get_signal_t_start(0, seg, 0) == start / FS
            raw = reader.get_analogsignal_chunk(0, seg, stream_index=0)
            np.testing.assert_array_equal(raw, block)
            got = reader.rescale_signal_raw_to_float(raw, "float64", stream_index=0)
            gain = uv * 1e-6 * 1e6  # µV per count from the metadata's V per count
            np.testing.assert_array_equal(got, block * gain)
            ts, dur, labels = reader.get_event_timestamps(0, seg, index)
            if len(ts):
                times = reader.rescale_event_timestamp(ts, "float64", index)
                durations = reader.rescale_epoch_duration(dur, "float64", index)
                found += [
                    (round(t * FS), round(d * FS), int(line) - 1)
                    for t, d, line in zip(times, durations, labels, strict=True)
                ]
        assert sorted(found) == stimuli
    finally:
        shutil.rmtree(root, ignore_errors=True)
