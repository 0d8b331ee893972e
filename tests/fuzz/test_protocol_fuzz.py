"""Any protocol file parses to a valid plan or is refused with ProtocolError
naming the file; never another exception, never a hang."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rig.protocols import ProtocolError, load_protocol, parse_protocol
from rig.protocols._closed_loop import ClosedLoopSpec
from rig.protocols._parse import BLOCK_KEYS, PROTOCOL_KEYS, SETTING_KEYS, TOP_KEYS
from tests.fuzz._toml import (
    EDGES,
    FUZZ,
    SCALARS,
    VALUES,
    keys,
    toml_table,
    toml_value,
)

SOURCE = "fuzz.toml"
VALID_BLOCK = {
    "amplitude_vpp": [3.0, 5.0],
    "duration_ms": 3.0,
    "inter_stimulus_interval_s": 0.4,
}


def parses_or_refuses(text: str):
    try:
        protocol = parse_protocol(text, source=SOURCE)
    except ProtocolError as exc:
        assert str(exc).startswith(f"{SOURCE}: ")
        return None
    if protocol.closed_loop is not None:
        assert isinstance(protocol.closed_loop, ClosedLoopSpec)
        return protocol
    plan = protocol.expand()
    assert len(plan.trials) >= 1
    for trial in plan.trials:
        assert math.isfinite(trial.onset_s) and trial.onset_s >= 0
        assert 0 <= trial.pulse.amplitude_vpp <= 20
        assert 0 < trial.pulse.duration_s <= 0.05
    return protocol


def document(top, head, defaults, blocks) -> str:
    parts = [f"{k} = {toml_value(v)}\n" for k, v in top.items()]
    parts.append(toml_table("protocol", head))
    if defaults:
        parts.append(toml_table("defaults", defaults))
    parts += [toml_table("block", b, array=True) for b in blocks]
    return "".join(parts)


# One to three keys of a valid block replaced: mostly by a scalar or a
# known-hostile shape, sometimes by any nested value.
BLOCK_VALUES = st.one_of(SCALARS, EDGES, EDGES, VALUES)
BLOCKS = st.lists(
    st.dictionaries(keys(BLOCK_KEYS), BLOCK_VALUES, min_size=1, max_size=3).map(
        lambda b: {**VALID_BLOCK, **b}
    ),
    min_size=1,
    max_size=3,
)


@settings(FUZZ, max_examples=400)
@given(
    top=st.fixed_dictionaries(
        {"format_version": st.sampled_from([1] * 8 + [1.0, True, 2, "1", 0])}
    ),
    head=st.fixed_dictionaries({"name": st.just("p")}).flatmap(
        lambda d: st.dictionaries(keys(PROTOCOL_KEYS), VALUES, max_size=2).map(
            lambda e: {**d, **e}
        )
    ),
    defaults=st.dictionaries(keys(SETTING_KEYS), BLOCK_VALUES, max_size=2),
    blocks=BLOCKS,
)
def test_structured_protocols_parse_or_are_refused(top, head, defaults, blocks):
    protocol = parses_or_refuses(document(top, head, defaults, blocks))
    if protocol is not None:  # only format_version = 1 exactly (not 1.0, not true)
        assert type(top["format_version"]) is int and top["format_version"] == 1
        assert protocol.seed >= 0


@FUZZ
@given(
    loop=st.dictionaries(
        keys(["strategy", "n_stimuli", "inter_stimulus_interval_s", "amplitude_vpp",
              "duration_ms", "pairs", "beta", "safe_radius", "objective"]),
        VALUES, max_size=6,
    )
)  # fmt: skip
def test_closed_loops_parse_or_are_refused(loop):
    text = 'format_version = 1\n[protocol]\nname = "p"\n' + toml_table(
        "closed_loop", loop
    )
    parses_or_refuses(text)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused(text):
    parses_or_refuses(text)


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(TOP_KEYS).map(lambda k: f"[{k}]"),
            st.just("[[block]]"),
            st.tuples(keys(BLOCK_KEYS + TOP_KEYS), VALUES).map(
                lambda kv: f"{kv[0]} = {toml_value(kv[1])}"
            ),
        ),
        max_size=12,
    )
)
def test_toml_lines_in_any_order_parse_or_are_refused(lines):
    parses_or_refuses("\n".join(lines) + "\n")


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_on_disk_parse_or_are_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_bytes(data)
    try:
        load_protocol(path)
    except ProtocolError as exc:
        assert str(path) in str(exc)
