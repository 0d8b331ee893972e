"""Hypothesis strategies for hostile TOML and JSON documents (no TOML writer
is a dependency: the few lines here write what the strategies make)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Modest and derandomized: each fuzz test runs in a few seconds, the same
# examples every time (CI).
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Values of every TOML kind, in and out of every range: NaN, ±inf, zero,
# negatives, integers beyond float range, wrong types.
SCALARS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 3, 4, 31, 32, 0.0, -0.0, 1e-9, 1e308, 10**400]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["sequential", "random", "positive_first", "negative_first"]),
)
# Known-hostile shapes: empty lists and tables, ranges with a NaN, zero or
# beyond-float step, reversed or huge ranges.
EDGES = st.sampled_from(
    [
        [],
        [],
        [],
        {},
        [[]],
        {"start": 1.0, "stop": 5.0, "step": math.nan},
        {"start": 1.0, "stop": 5.0, "step": 10**400},
        {"start": 1.0, "stop": 5.0, "step": 0},
        {"start": 5.0, "stop": 1.0, "step": 1.0},
        {"start": 1.0, "stop": 5.0, "n": 10**400},
        {"start": 0.5, "stop": 6.0, "n": 1000},
        [10**400],
        [-1],
    ]
)
VALUES = st.recursive(
    st.one_of(SCALARS, EDGES, EDGES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["start", "stop", "step", "n", "x"]), inner,
                        max_size=4),
    ),
    max_leaves=6,
)  # fmt: skip


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return (
            '"'
            + "".join(
                c
                if c.isprintable() and c not in '"\\'
                else f"\\u{ord(c):04x}"
                if ord(c) < 0x10000
                else f"\\U{ord(c):08x}"
                for c in value
            )
            + '"'
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        body = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + body + "}"
    raise TypeError(value)


def toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() and key.isascii() else f'"{key}"'


def toml_table(name: str, table: dict[str, Any], *, array: bool = False) -> str:
    head = f"[[{name}]]" if array else f"[{name}]"
    return "\n".join([head, *(f"{toml_key(k)} = {toml_value(v)}" for k, v in
                              table.items())]) + "\n"  # fmt: skip


def keys(known: list[str]) -> st.SearchStrategy[str]:
    """Mostly the schema's keys, sometimes a typo or an unknown one."""
    return st.sampled_from(known * 4 + [k[:-1] for k in known] + ["x", "_", "é"])
