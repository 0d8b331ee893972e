"""The reader's fast paths against its careful ones: same values bit for bit,
same problems, same error, on every input.

Each file the analysis loads is read at once when it is as the writer writes
it (events.jsonl as one JSON array, the CSVs column by column, tracking.jsonl
by a Numba parser) and line by line otherwise; the line-by-line reading is the
reference.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.recording import _reader
from rig.recording._reader import RecordingFormatError

# -- numbers in tracking.jsonl: the Numba parser rounds as float() does --------


@st.composite
def _decimals(draw: st.DrawFn) -> str:
    """A JSON number: sign, whole part, fraction and exponent of any length."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(
        st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,19}", fullmatch=True))
    )
    fraction = draw(
        st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,20}", fullmatch=True))
    )
    exponent = draw(
        st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,5}", fullmatch=True))
    )
    return sign + whole + fraction + exponent


_numbers = st.one_of(
    _decimals(),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # json.dumps'
    st.floats(-1e4, 1e4).map(lambda v: repr(round(v, 4))),  # as the writer's
    st.integers(-(2**60), 2**60).map(str),
)


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)  # tells -0.0 from 0.0


def _parse_number(text: str) -> tuple[float, int]:
    from rig.recording._tracking_kernel import _POW10, _number

    buf = np.frombuffer((text + "]").encode(), dtype=np.uint8)
    return _number(buf, 0, _POW10)


@settings(max_examples=3000, deadline=None)
@given(_numbers)
def test_a_number_is_the_float_json_gives_or_is_left_to_json(text):
    value, end = _parse_number(text)
    want = float(json.loads(text))  # an int (then float) or a float: float()
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "")
    if end >= 0:
        assert end == len(text)
        assert _bits(value) == _bits(want), (text, value, want)
    elif "e" not in text.lower():  # refused: only beyond the exact fast path
        assert len(digits) > 18 or int(digits) > 2**53


@pytest.mark.parametrize(
    "text",
    ["0", "-0", "-0.0", "0.0", "1.9815", "-12.5", "1e-05", "5e-324", "1.7976931348623157e+308",
     "123456789012345.6", "0.1", "9007199254740993", "1E22", "1e23", "-0e0"],
)  # fmt: skip
def test_numbers_at_the_edges(text):
    value, end = _parse_number(text)
    if end >= 0:
        assert _bits(value) == _bits(float(json.loads(text)))
    if text in ("1.9815", "-12.5", "0.1", "1e-05", "1E22", "-0.0", "-0"):
        assert end == len(text)  # the writer's numbers take the fast path


def test_a_number_rounded_by_a_multiplication_would_be_caught():
    # 1.9815 is 19815 / 10^4; 19815 * 1e-4 rounds the other way for some:
    # the reason the parser divides (and the test above can tell).
    wrong = [
        f"{m}.{f:04d}" for m in range(3) for f in range(10000)
        if 1e-4 * int(f"{m}{f:04d}") != float(f"{m}.{f:04d}")
    ]  # fmt: skip
    assert wrong
    for text in wrong[:50]:
        value, _ = _parse_number(text)
        assert value == float(text)


# -- events.jsonl: one JSON array when every line is an object -----------------


def _read_jsonl_reference(path: Path, problems: list[str]) -> list:
    """The reader before its fast path: the non-blank lines joined into one
    JSON array, else line by line."""
    lines = path.read_bytes().split(b"\n")
    whole = [line for line in lines if line.strip()]
    try:
        at_once = json.loads(b"[" + b",".join(whole) + b"]")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        at_once = None
    if isinstance(at_once, list) and len(at_once) == len(whole):
        if all(isinstance(record, dict) for record in at_once):
            return at_once
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            if number == len(lines):
                problems.append(f"{path.name}: ignored a partial last line")
                continue
            raise RecordingFormatError(
                f"{path}: line {number} is not valid JSON"
            ) from None
        if not isinstance(record, dict):
            raise RecordingFormatError(
                f"{path}: line {number} is {type(record).__name__}; allowed: a JSON "
                "object per line"
            )
        records.append(record)
    return records


_json_lines = st.lists(
    st.one_of(
        st.dictionaries(
            st.sampled_from(["kind", "sample", "a"]),
            st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=4)),
            max_size=3,
        ).map(lambda d: json.dumps(d, separators=(",", ":"))),
        st.sampled_from(["", " ", "\r", "[1]", "3", '"s"', "{", '{"a":', "}", '{"a":"x', 'y"}',
                         "{}{}", '{"a":[1', "2]}", "{},{}", "null", "\t{}"]),
    ),
    max_size=8,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_json_lines, st.sampled_from(["\n", ""]))
def test_events_read_at_once_equal_events_read_line_by_line(
    tmp_path_factory, lines, end
):
    path = tmp_path_factory.mktemp("e") / "events.jsonl"
    path.write_bytes(("\n".join(lines) + end).encode())
    got = _outcome(_reader._read_jsonl, path)
    assert got == _outcome(_read_jsonl_reference, path)
    assert repr(got) == repr(_outcome(_read_jsonl_reference, path))  # -0.0, 1 vs 1.0


def _outcome(read, path: Path) -> tuple:
    problems: list[str] = []
    try:
        return ("ok", read(path, problems), problems)
    except RecordingFormatError as error:
        return ("error", str(error))


# -- frames.csv and frame_samples.csv: column by column ------------------------


def _careful(monkeypatch, name: str, refused) -> None:
    monkeypatch.setattr(_reader, name, lambda *args: refused)


_fields = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-1", "-0", " 5", "+3", "1_0", "x", "1.5", "99999999999999999999",
                     "٣", "1e400", "nan", "0x1"]),
)  # fmt: skip


@st.composite
def _frames_csv(draw: st.DrawFn) -> str:
    numbers = draw(st.booleans())
    header = "frame_index,host_time_s" + (",camera_frame_number" if numbers else "")
    rows = []
    for i in range(draw(st.integers(0, 6))):
        good = draw(st.integers(0, 5)) > 0
        index = str(i) if good or draw(st.booleans()) else draw(_fields)
        time = repr(draw(st.floats(0, 1e5))) if good else draw(_fields)
        row = [index, time]
        if numbers:
            row.append(
                draw(st.sampled_from(["", str(i + 7)])) if good else draw(_fields)
            )
        if not good and draw(st.booleans()):
            row = row[: draw(st.integers(1, 4))] + ["9"] * draw(st.integers(0, 2))
        rows.append(",".join(row))
    text = "\n".join([header, *rows]) + "\n"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["7,1.", "", "x"]))  # a torn last line
    return text


@settings(max_examples=300, deadline=None)
@given(_frames_csv())
def test_frame_times_read_at_once_equal_frame_times_read_line_by_line(
    tmp_path_factory, text
):
    path = tmp_path_factory.mktemp("f") / "frames.csv"
    path.write_text(text)
    got = _csv_outcome(lambda p: _reader._read_frame_times(path, p))
    with pytest.MonkeyPatch.context() as patch:
        _careful(patch, "_frame_times_at_once", None)
        want = _csv_outcome(lambda p: _reader._read_frame_times(path, p))
    assert got == want


@st.composite
def _frame_table(draw: st.DrawFn) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    header = ["frame_index", "sample", "source", "trigger_count"]
    if draw(st.integers(0, 9)) == 0:
        header = draw(st.permutations(header))
    out.writerow(header)
    for _ in range(draw(st.integers(0, 8))):
        good = draw(st.integers(0, 4)) > 0
        row = [
            str(draw(st.integers(-2, 8))) if good else draw(_fields),
            draw(st.sampled_from(["", "0", "15", "-1"])) if good else draw(_fields),
            draw(st.sampled_from(["led_code", "trigger", "a,b", 'q"', " ", ""])),
            draw(st.sampled_from(["", "3"])),
        ]
        if not good and draw(st.booleans()):
            row = row[: draw(st.integers(0, 4))] + ["1"] * draw(st.integers(0, 2))
        out.writerow(row)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text += draw(st.sampled_from(["\n", "3,4,x", "\r\n", "4,5\x00,a,1\n"]))
    return text


@settings(max_examples=300, deadline=None)
@given(_frame_table(), st.integers(0, 7))
def test_frame_table_read_at_once_equals_the_csv_readers(tmp_path_factory, text, n):
    path = tmp_path_factory.mktemp("s") / "frame_samples.csv"
    path.write_text(text)
    got = _csv_outcome(lambda p: _reader._read_frame_samples(path, n, p))
    with pytest.MonkeyPatch.context() as patch:
        _careful(patch, "_frame_table_at_once", False)
        want = _csv_outcome(lambda p: _reader._read_frame_samples(path, n, p))
    assert got == want


def _csv_outcome(read) -> tuple:
    """What a reader gives, comparable: arrays as (dtype, bytes)."""
    problems: list[str] = []
    try:
        result = read(problems)
    except (RecordingFormatError, csv.Error) as error:
        return ("error", type(error).__name__, str(error))
    return ("ok", [_comparable(v) for v in result], problems)


def _comparable(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return value


def test_the_writers_tables_take_the_fast_paths(tmp_path):
    times = "".join(f"{i},{1000 + i / 60:.6f},{i + 7}\n" for i in range(50))
    (tmp_path / "frames.csv").write_text(
        "frame_index,host_time_s,camera_frame_number\n" + times
    )
    table = "".join(f"{i},{500 * i},led_code,{i + 7}\n" for i in range(50))
    (tmp_path / "frame_samples.csv").write_text(
        "frame_index,sample,source,trigger_count\n" + table
    )
    rows = (tmp_path / "frames.csv").read_text().split("\n")[1:-1]
    assert _reader._frame_times_at_once(rows, 3) is not None
    text = (tmp_path / "frame_samples.csv").read_text()
    out, sources = np.full(50, -1), [""] * 50
    assert _reader._frame_table_at_once(text, text.split("\n"), out, sources)
    assert out.tolist() == [500 * i for i in range(50)] and set(sources) == {"led_code"}
    assert math.isclose(
        _reader._read_frame_times(tmp_path / "frames.csv", [])[0][-1],
        1000 + 49 / 60,
        abs_tol=1e-6,
    )
