"""Any Spike Recorder WAV + events pair reads or is refused with
SpikeRecorderError naming the file; never another exception, never a hang.
(tests/rig/test_spike_recorder.py fuzzes the marker map.)"""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from rig.offline.spike_recorder import SpikeRecorderError, read_spike_recorder
from tests.fuzz._toml import FUZZ


def wav(n_channels, width, rate, data, fmt_tag=1, data_size=None) -> bytes:
    block = n_channels * width
    fmt = struct.pack("<HHIIHH", fmt_tag, n_channels, rate, (rate * block) % 2**32,
                      block % 2**16, (8 * width) % 2**16)  # fmt: skip
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


HEADERS = st.builds(
    wav,
    n_channels=st.sampled_from([0, 1, 2, 4, 5, 65535]),
    width=st.sampled_from([0, 1, 2, 2, 2, 3, 4]),
    rate=st.sampled_from([0, 1, 20_000, 2**32 - 1]),
    data=st.binary(max_size=64),
    fmt_tag=st.sampled_from([1, 1, 1, 3, 0xFFFE, 0]),
    data_size=st.one_of(st.none(), st.sampled_from([0, 1, 2**32 - 1])),
)
WAVS = st.one_of(
    HEADERS, HEADERS.map(lambda b: b[: len(b) // 2]), st.binary(max_size=80)
)
TIMES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0.0", "0.0001", "-1", "1e300", "nan", "inf", "", "x", "1,2"]),
)
LINES = st.one_of(
    st.tuples(st.sampled_from(["1", "2", "_neuron0", "a,b", "", " "]), TIMES).map(
        lambda mt: f"{mt[0]},\t{mt[1]}"
    ),
    st.sampled_from(["# comment", "", "1", ",", "1,\t0.0,x"]),
    st.text(max_size=12),
)
EVENTS = st.one_of(
    st.lists(LINES, max_size=5).map(lambda lines: "\n".join(lines).encode()),
    st.binary(max_size=40),
)


@FUZZ
@given(wav_bytes=WAVS, events=EVENTS)
def test_any_wav_and_events_read_or_are_refused(tmp_path_factory, wav_bytes, events):
    folder = tmp_path_factory.mktemp("sr")
    path = folder / "x.wav"
    path.write_bytes(wav_bytes)
    (folder / "x-events.txt").write_bytes(events)
    try:
        data = read_spike_recorder(path)
    except SpikeRecorderError as exc:
        assert str(folder) in str(exc)
        return
    n, n_ch = data.samples.shape
    assert n >= 1 and n_ch >= 1 and data.sample_rate_hz > 0
    assert len(data.marker_ids) == len(data.marker_times_s) >= 1
    assert all(math.isfinite(t) and t >= 0 for t in data.marker_times_s)
    assert all(m.strip() for m in data.marker_ids)
