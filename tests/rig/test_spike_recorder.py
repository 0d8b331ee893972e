"""Spike Recorder markers: which are stimuli, the marker map, and the CLI on both."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.sim import RacewayGeometry, WormModel, WormParams, to_adc_counts
from rig.offline.spike_recorder import (
    MarkerParameters,
    SpikeRecorderData,
    SpikeRecorderError,
    read_marker_map,
    read_spike_recorder,
    select_stimuli,
    write_spike_recorder,
)
from tests._cli import neurorig

FS = 20_000
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def events(*markers: tuple[str, float]) -> SpikeRecorderData:
    ids = [m for m, _ in markers]
    return SpikeRecorderData(
        np.zeros((10, 1), np.int16), 1000.0, ids, np.array([t for _, t in markers])
    )


# --- select_stimuli --------------------------------------------------------


def test_default_keeps_whole_number_ids_and_counts_the_rest():
    data = events(
        ("1", 0.5),
        ("_neuron0", 0.51),
        ("2", 1.0),
        ("threshold", 1.2),
        ("_neuron0", 1.01),
        ("10", 1.5),
        ("_neuron1", 1.6),
        ("1.5", 1.7),
        ("-1", 1.8),
    )
    chosen = select_stimuli(data)
    assert chosen.ids == ["1", "2", "10"]
    np.testing.assert_array_equal(chosen.times_s, [0.5, 1.0, 1.5])
    assert chosen.ignored == {
        "_neuron0": 2,
        "threshold": 1,
        "_neuron1": 1,
        "1.5": 1,
        "-1": 1,
    }


def test_chosen_ids_keep_only_those():
    data = events(("1", 0.5), ("2", 1.0), ("_neuron0", 1.1), ("1", 1.5), ("2", 2.0))
    chosen = select_stimuli(data, ["2"])
    assert chosen.ids == ["2", "2"]
    np.testing.assert_array_equal(chosen.times_s, [1.0, 2.0])
    assert chosen.ignored == {"1": 2, "_neuron0": 1}
    # A non-numeric ID can be chosen too.
    assert select_stimuli(data, ["_neuron0"]).ids == ["_neuron0"]


def test_nothing_to_ignore_and_nothing_chosen():
    chosen = select_stimuli(events(("3", 0.1), ("4", 0.2)))
    assert chosen.ids == ["3", "4"] and chosen.ignored == {}
    none = select_stimuli(events(("3", 0.1)), ["7"])
    assert none.ids == [] and none.times_s.size == 0 and none.ignored == {"3": 1}


def test_selection_from_files_written_as_spike_recorder_does(tmp_path):
    samples = np.zeros((100, 2), np.int16)
    markers = [("1", 0.001), ("_neuron0", 0.002), ("2", 0.003), ("_neuron0", 0.004)]
    write_spike_recorder(tmp_path / "a.wav", samples, 10_000, markers)
    chosen = select_stimuli(read_spike_recorder(tmp_path / "a.wav"))
    assert chosen.ids == ["1", "2"] and chosen.ignored == {"_neuron0": 2}
    np.testing.assert_allclose(chosen.times_s, [0.001, 0.003])


def test_superscript_digits_are_not_whole_numbers():
    assert select_stimuli(events(("1", 0.1), ("²", 0.2))).ids == ["1"]


# --- read_marker_map -------------------------------------------------------


def write_map(folder: Path, text: str) -> Path:
    path = folder / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_map_round_trips(tmp_path):
    path = write_map(
        tmp_path,
        '[markers."1"]\namplitude_vpp = 4.0\nduration_ms = 3.0\npair = 2\n'
        '[markers."2"]\namplitude_vpp = 5\n'  # an integer is a number
        "[markers.stim_b]\n",  # every key is optional
    )
    got = read_marker_map(path)
    assert list(got) == ["1", "2", "stim_b"]
    assert all(isinstance(p, MarkerParameters) for p in got.values())
    one, two, b = got["1"], got["2"], got["stim_b"]
    assert (one.amplitude_vpp, one.duration_s, one.configuration) == (
        4.0,
        pytest.approx(3e-3),
        "C4-A5",  # the old pair 2: electrodes 4 and 5
    )
    assert isinstance(two.amplitude_vpp, float) and two.amplitude_vpp == 5.0
    assert two.duration_s is None and two.configuration == "C0-A1"
    assert math.isnan(b.amplitude_vpp) and b.duration_s is None
    assert b.configuration == "C0-A1"


KEY_ERRORS = [
    ("voltage = 3", "voltage"),  # unknown key
    ('amplitude_vpp = "4"', "amplitude_vpp"),
    ("duration_ms = [3]", "duration_ms"),
    ("duration_ms = nan", "duration_ms"),
    ("amplitude_vpp = inf", "amplitude_vpp"),
    ("amplitude_vpp = -inf", "amplitude_vpp"),
    ("duration_ms = 1e400", "duration_ms"),  # overflows to inf
    ("duration_ms = 0", "duration_ms"),
    ("duration_ms = 0.0", "duration_ms"),
    ("amplitude_vpp = -1.5", "amplitude_vpp"),
    ("amplitude_vpp = true", "amplitude_vpp"),
    ("pair = true", "pair"),
    ("pair = -1", "pair"),
    ("pair = 1.5", "pair"),
    ('pair = "0"', "pair"),
]


@pytest.mark.parametrize(("line", "key"), KEY_ERRORS)
def test_bad_value_names_file_marker_and_key(tmp_path, line, key):
    path = write_map(
        tmp_path, f'[markers."1"]\nduration_ms = 3\n[markers."7"]\n{line}\n'
    )
    with pytest.raises(SpikeRecorderError) as info:
        read_marker_map(path)
    message = str(info.value)
    assert str(path) in message and '[markers."7"]' in message and key in message
    assert "\n" not in message


def test_marker_that_is_not_a_table_is_named(tmp_path):
    path = write_map(tmp_path, '[markers]\n"3" = 4.0\n')
    with pytest.raises(SpikeRecorderError, match=r'\[markers\."3"\] must be a table'):
        read_marker_map(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("title = 'x'\n", '[markers."ID"]'),  # no [markers] table
        ("", '[markers."ID"]'),
        ("[markers]\n", '[markers."ID"]'),  # an empty one
        ("markers = 3\n", '[markers."ID"]'),
        ("[[markers]]\namplitude_vpp = 1\n", '[markers."ID"]'),
        ('[markers."1"\nduration_ms = 3\n', "not a TOML marker map"),
        ("duration_ms = = 3\n", "not a TOML marker map"),
        ("a = " + "[" * 20_000 + "]" * 20_000 + "\n", "not a TOML marker map"),
        ("a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n", "not a TOML marker map"),
    ],
    ids=[
        "no-markers",
        "empty-file",
        "empty-markers",
        "markers-not-table",
        "array-of-tables",
        "unclosed-header",
        "bad-syntax",
        "nested-arrays",
        "nested-tables",
    ],
)
def test_bad_file_names_the_file(tmp_path, text, says):
    path = write_map(tmp_path, text)
    with pytest.raises(SpikeRecorderError) as info:
        read_marker_map(path)
    assert str(info.value).startswith(f"{path}: ") and says in str(info.value)


def test_not_utf8_and_missing_file_name_the_file(tmp_path):
    path = tmp_path / "map.toml"
    path.write_bytes(b'[markers."1"]\namplitude_vpp = 4\n# \xff\xfe\n')
    with pytest.raises(SpikeRecorderError, match="not a TOML marker map") as info:
        read_marker_map(path)
    assert str(path) in str(info.value)
    missing = tmp_path / "absent.toml"
    with pytest.raises(SpikeRecorderError, match="no such marker map") as info:
        read_marker_map(missing)
    assert str(missing) in str(info.value)


def test_huge_integer_is_refused_not_overflowed(tmp_path):
    path = write_map(tmp_path, '[markers."1"]\namplitude_vpp = ' + "9" * 400 + "\n")
    with pytest.raises(SpikeRecorderError, match="amplitude_vpp"):
        read_marker_map(path)


def parses_or_refuses(folder: Path, data: bytes) -> None:
    """Either a valid map (every value in range) or SpikeRecorderError naming the file."""
    path = folder / "map.toml"
    path.write_bytes(data)
    try:
        got = read_marker_map(path)
    except SpikeRecorderError as exc:
        assert str(path) in str(exc)
        return
    assert got
    for marker, p in got.items():
        assert isinstance(marker, str)
        assert math.isnan(p.amplitude_vpp) or 0 < p.amplitude_vpp < math.inf
        assert p.duration_s is None or 0 < p.duration_s < math.inf
        assert p.configuration.startswith("C")


@SETTINGS
@given(text=st.text())
def test_any_text_parses_or_is_refused(tmp_path_factory, text):
    parses_or_refuses(tmp_path_factory.mktemp("text"), text.encode("utf-8"))


@SETTINGS
@given(data=st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(tmp_path_factory, data):
    parses_or_refuses(tmp_path_factory.mktemp("bytes"), data)


# TOML-ish marker maps: marker tables of the allowed keys (and others) with
# values of every TOML kind, in and out of range, then a few TOML-ish lines
# (headers, keys, comments). Integers stay within float range: one past it is
# the overflow bug above (test_huge_integer_is_refused_not_overflowed).
_MARKER = r'\[markers\.("[0-9a-z_ ]{0,2}"|[0-9a-z_]{1,2})\]'
_KEY = r"(amplitude_vpp|duration_ms|pair|x|markers|markers\.1\.pair)"
_NUMBER = (
    r"[+-]?(0|[1-9][0-9]{0,19})(\.[0-9]{1,3})?([eE][+-]?[1-9][0-9]{0,2})?"
    r"|[+-]?(nan|inf)"
)
_OTHER = (
    r'true|false|"[a-z0-9]{0,3}"|\[[0-9, ]{0,5}\]|\{ ?(a ?= ?1)? ?\}|0x[0-9a-f]{1,4}'
    r"|(19|20)[0-9]{2}-0[1-9]-[0-2][1-9](T[01][0-9]:[0-5][0-9]:[0-5][0-9])?"
)
_VALUE = st.one_of(
    st.from_regex(rf"({_NUMBER})", fullmatch=True),
    st.from_regex(r"[0-9]{1,2}(\.[0-9])?", fullmatch=True),  # in range
    st.from_regex(rf"({_OTHER})", fullmatch=True),
)
_TABLE = st.builds(
    lambda head, body: "\n".join([head, *(f"{k} = {v}" for k, v in body.items())]),
    st.from_regex(_MARKER, fullmatch=True),
    st.dictionaries(
        st.sampled_from([*["amplitude_vpp", "duration_ms", "pair"] * 3, "x"]),
        _VALUE,
        min_size=1,
        max_size=3,
    ),
)
_LINE = st.from_regex(
    rf"({_MARKER}|\[other\]|{_KEY} ?= ?({_NUMBER}|{_OTHER})|#[a-z ]{{0,5}}|)",
    fullmatch=True,
)
TOMLISH = st.builds(
    lambda tables, lines: "\n".join(tables + lines) + "\n",
    st.lists(
        _TABLE, min_size=1, max_size=3, unique_by=lambda table: table.split("\n")[0]
    ),
    st.lists(_LINE, max_size=2),
)


@SETTINGS
@given(text=TOMLISH)
def test_tomlish_text_parses_or_is_refused(tmp_path_factory, text):
    parses_or_refuses(tmp_path_factory.mktemp("toml"), text.encode("utf-8"))


# --- neurorig analyze on a WAV + events pair ---------------------------------

POSITIONS_MM = "37.5,57.5,77.5,97.5"  # RacewayGeometry's pair centres
UV_PER_COUNT = 5.0 / 65536 / 1000 * 1e6


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    """Three "1" stimuli, each followed by a spike-sorter ``_neuron0`` line."""
    geometry = RacewayGeometry()
    assert ",".join(f"{p:g}" for p in geometry.pair_centres_m() * 1000) == POSITIONS_MM
    model = WormModel(
        WormParams(
            mgf_velocity_m_per_s=20.0,
            lgf_velocity_m_per_s=10.0,
            habituation_per_stimulus=0.0,
        ),
        geometry,
        fs_hz=FS,
        seed=8,
    )
    onsets = [FS // 2 + k * FS // 2 for k in range(3)]
    for onset in onsets:
        model.stimulate(onset, 4.0, 3e-3)
    counts = to_adc_counts(model.render(0, onsets[-1] + FS // 2), gain=1000)
    path = tmp_path_factory.mktemp("sr") / "worm.wav"
    markers = []
    for onset in onsets:
        markers += [("1", onset / FS), ("_neuron0", onset / FS + 0.02)]
    write_spike_recorder(path, counts, FS, markers)
    return path


def analyze(wav_path: Path, *options: str):
    return neurorig(
        "analyze", str(wav_path), "--electrode-positions-mm", POSITIONS_MM,
        "--uv-per-count", str(UV_PER_COUNT), "--quiet", *options,
    )  # fmt: skip


def error_line(stderr: str) -> str:
    """The one ``neurorig: error:`` line (a note may come before it); no traceback."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture(scope="module")
def default_run(wav, tmp_path_factory):
    out_json = tmp_path_factory.mktemp("out") / "r.json"
    return analyze(wav, "--json", str(out_json)), out_json


def test_cli_ignores_non_stimulus_markers_and_says_so(default_run):
    out, out_json = default_run
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert (
        "note: 3 marker lines are not stimuli and were ignored ('_neuron0' ×3)"
        in out.stderr
    )
    assert "--stimulus-markers" in out.stderr
    results = json.loads(out_json.read_text())
    assert [s["time_s"] for s in results["stimuli"]] == pytest.approx([0.5, 1.0, 1.5])


def test_cli_json_is_strict_json(default_run):
    _, out_json = default_run

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    json.loads(out_json.read_text(), parse_constant=refuse)


def test_cli_applies_the_marker_map(wav, tmp_path):
    marker_map = write_map(
        tmp_path, '[markers."1"]\namplitude_vpp = 4.0\nduration_ms = 3\npair = 1\n'
    )
    out_json = tmp_path / "r.json"
    out = analyze(wav, "--marker-map", str(marker_map), "--json", str(out_json))
    assert out.returncode == 0, out.stderr
    stimuli = json.loads(out_json.read_text())["stimuli"]
    assert len(stimuli) == 3
    for s in stimuli:
        assert s["parameters"]["amplitude_vpp"] == 4.0
        assert s["parameters"]["duration_s"] == pytest.approx(3e-3)
        assert s["parameters"]["configuration"] == "C2-A3"  # the old pair 1


def test_cli_chosen_marker_absent_is_one_line_error(wav):
    out = analyze(wav, "--stimulus-markers", "7")
    assert out.returncode == 2
    line = error_line(out.stderr)
    assert line.startswith("neurorig: error: ")
    assert str(wav) in line and "IDs 7" in line


def test_cli_marker_missing_from_map_is_one_line_error(wav, tmp_path):
    marker_map = write_map(tmp_path, '[markers."2"]\nduration_ms = 3\n')
    out = analyze(wav, "--marker-map", str(marker_map))
    assert out.returncode == 2
    line = error_line(out.stderr)
    assert line.startswith("neurorig: error: ")
    assert str(marker_map) in line and "'1'" in line and "not in the marker map" in line


def test_cli_bad_marker_map_is_one_line_error(wav, tmp_path):
    marker_map = write_map(tmp_path, '[markers."1"]\nduration_ms = nan\n')
    out = analyze(wav, "--marker-map", str(marker_map))
    assert out.returncode == 2
    line = error_line(out.stderr)
    assert str(marker_map) in line and '"1"' in line and "duration_ms" in line


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_cli_bad_pulse_duration_is_refused_by_the_parser(tmp_path, value):
    # argparse refuses it before any file is read.
    out = neurorig("analyze", str(tmp_path / "x.wav"), "--pulse-duration-ms", value)
    assert out.returncode == 2
    line = error_line(out.stderr)
    assert "argument --pulse-duration-ms" in line and value in line


def test_the_marker_map_example_in_the_docs_reads(tmp_path):
    """docs/analysis.md's marker map example is a valid map."""
    text = (Path(__file__).parents[2] / "docs" / "analysis.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "markers.toml"
    path.write_text(example)
    mapping = read_marker_map(path)
    assert mapping["1"].amplitude_vpp == 4.0 and mapping["1"].duration_s == 3e-3
    assert mapping["2"].duration_s == 5e-3 and mapping["2"].configuration == "C0-A1"
