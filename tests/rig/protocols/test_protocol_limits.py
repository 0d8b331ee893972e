"""Protocol and rig files that would exhaust memory or the stack are refused in
one line naming the file, before anything is expanded."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.protocols import ProtocolError, load_protocol, parse_protocol
from rig.protocols._parse import ORDERS
from rig.protocols._plan import MAX_TRIALS, block_size
from rig.rig_file import RigFileError, load_rig_file

HUGE = """format_version = 1
[protocol]
name = "huge"
[[block]]
amplitude_vpp = {start = 0.5, stop = 6.0, n = 1000}
duration_ms = {start = 1.0, stop = 7.0, n = 1000}
repeats = 10
inter_stimulus_interval_s = 0.2
"""


def test_a_protocol_of_ten_million_trials_is_refused_at_once(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text(HUGE)
    start = time.perf_counter()
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert message.startswith(f"{path}: block: expands to 10000000 trials")
    assert f"allowed at most {MAX_TRIALS} trials" in message


def test_the_cap_counts_every_block():
    block = """[[block]]
amplitude_vpp = {start = 0.5, stop = 6.0, n = 100}
duration_ms = [1.0, 2.0, 3.0, 4.0, 5.0]
repeats = 60
inter_stimulus_interval_s = 0.2
"""  # 30 000 trials each: three fit, four do not
    head = 'format_version = 1\n[protocol]\nname = "many"\n'
    assert len(parse_protocol(head + block * 3).blocks) == 3
    with pytest.raises(ProtocolError, match="expands to 120000 trials"):
        parse_protocol(head + block * 4, source="many.toml")


@pytest.mark.parametrize(
    "nested",
    ["x = " + "[" * 5000 + "]" * 5000, "x = " + "{a = " * 3000 + "1" + "}" * 3000],
)
def test_deeply_nested_toml_is_not_a_recursion_error(tmp_path, nested):
    path = tmp_path / "deep.toml"
    path.write_text(nested + "\n")
    with pytest.raises(ProtocolError, match=r"deep.toml: file: not a valid protocol"):
        load_protocol(path)
    with pytest.raises(RigFileError, match=r"deep.toml is not a valid rig file"):
        load_rig_file(path)


def test_a_binary_file_is_not_a_protocol_or_rig_file(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProtocolError, match="not a protocol file"):
        load_protocol(path)
    with pytest.raises(RigFileError, match="not a rig file"):
        load_rig_file(path)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 40),  # amplitudes
            st.integers(1, 5),  # durations
            st.integers(1, 2),  # polarities
            st.integers(1, 10_000),  # repeats
            st.sampled_from(ORDERS),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_the_count_before_expanding_is_the_plan_size(blocks):
    text = 'format_version = 1\n[protocol]\nname = "p"\n'
    for n_amp, n_dur, n_pol, repeats, order in blocks:
        polarities = ["positive_first", "negative_first"][:n_pol]
        text += (
            f"[[block]]\namplitude_vpp = {{start = 0.5, stop = 6.0, n = {n_amp}}}\n"
            f"duration_ms = {{start = 1.0, stop = 5.0, n = {n_dur}}}\n"
            f"polarities = {polarities!r}\nrepeats = {repeats}\n"
            f'order = "{order}"\ninter_stimulus_interval_s = 0.2\n'
        ).replace("'", '"')
    expected = sum(a * d * p * r for a, d, p, r, _ in blocks)
    try:
        protocol = parse_protocol(text, source="p.toml")
    except ProtocolError as exc:
        assert expected > MAX_TRIALS
        assert str(exc).startswith(f"p.toml: block: expands to {expected} trials")
        return
    assert expected <= MAX_TRIALS
    assert sum(block_size(b) for b in protocol.blocks) == expected
    if expected <= 5000:  # expanding is the slow part
        assert len(protocol.expand()) == expected
