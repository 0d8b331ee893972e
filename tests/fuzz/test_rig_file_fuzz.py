"""Any rig file loads to a usable description or is refused with RigFileError
(or SafetyError for [limits]) naming the file; never another exception.

tests/rig/test_rig_file_limits.py fuzzes the [limits] values; this fuzzes the
whole file: tables, keys, electrode positions, raceway and camera values.
"""

from __future__ import annotations

import math
import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.rig_file import DEFAULT_CHANNELS, TABLES, RigFileError, load_rig_file
from rig.safety import LIMIT_RANGES, SafetyError
from tests.fuzz._toml import EDGES, FUZZ, SCALARS, VALUES, keys, toml_table

TABLE_KEYS = {name: sorted(k or LIMIT_RANGES) for name, k in TABLES.items()}
POSITIONS = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
    st.lists(st.sampled_from([37.5, 57.5, 77.5, 97.5, 0, -1, 1e4]), max_size=6),
    VALUES,
)


def table_strategy(name: str):
    value = POSITIONS if name == "electrodes" else st.one_of(SCALARS, EDGES, VALUES)
    return st.dictionaries(keys(TABLE_KEYS[name]), value, max_size=3)


FILES = st.dictionaries(
    st.sampled_from([*TABLES, *TABLES, "lights"]),
    st.none(),
    max_size=4,
).flatmap(
    lambda names: st.fixed_dictionaries(
        {n: table_strategy(n if n in TABLES else "camera") for n in names}
    )
)


def loads_or_refuses(path):
    try:
        rig = load_rig_file(path)
    except (RigFileError, SafetyError) as exc:
        assert str(path) in str(exc)
        return
    if rig.pair_centres_m is not None:
        assert len(rig.pair_centres_m) == DEFAULT_CHANNELS  # one per channel
        assert all(math.isfinite(p) and p > 0 for p in rig.pair_centres_m)
    for value in (rig.head_on_raceway_m, rig.raceway_origin_px, rig.px_per_mm):
        assert value is None or math.isfinite(value)
    assert rig.px_per_mm is None or rig.px_per_mm > 0
    rig.geometry()  # the metadata it would write


@FUZZ
@given(tables=FILES)
def test_structured_rig_files_load_or_are_refused(tmp_path_factory, tables):
    path = tmp_path_factory.mktemp("rig") / "rig.toml"
    path.write_text("".join(toml_table(n, t) for n, t in tables.items()))
    loads_or_refuses(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_load_or_are_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rig") / "rig.toml"
    path.write_bytes(data)
    loads_or_refuses(path)


def test_positions_for_another_number_of_channels_are_refused(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("[electrodes]\npair_centres_mm = [37.5, 57.5, 77.5]\n")
    with pytest.raises(RigFileError) as info:
        load_rig_file(path)
    assert str(info.value) == (
        f"{path}: electrodes.pair_centres_mm = [37.5, 57.5, 77.5]: gives 3 "
        "positions for 4 channels; allowed exactly 4, one per recording pair"
    )
    # a session of three channels takes them
    rig = load_rig_file(path, n_channels=3)
    assert rig.pair_centres_m == pytest.approx((0.0375, 0.0575, 0.0775))


@pytest.mark.parametrize("what", ["fifo", "folder"])
def test_a_rig_file_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path, what
):
    path = tmp_path / "rig.toml"
    if what == "fifo":
        os.mkfifo(path)  # nobody writes it: a reader would wait forever
    else:
        path.mkdir()
    outcome: list = []

    def load():
        try:
            load_rig_file(path)
        except RigFileError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5.0)
    if thread.is_alive():  # unblock it, then fail
        with open(path, "wb"):
            pass
        pytest.fail("load_rig_file blocked on a named pipe")
    assert outcome == [
        f"rig file {path}: not a regular file (a folder, pipe or device); give a "
        "rig file (TOML)"
    ]
