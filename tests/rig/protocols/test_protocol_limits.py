"""Protocol and rig files that would exhaust memory or the stack are refused in
one line naming the file, before anything is expanded."""

from __future__ import annotations

import time

import pytest

from rig.protocols import ProtocolError, load_protocol, parse_protocol
from rig.protocols._plan import MAX_TRIALS
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
