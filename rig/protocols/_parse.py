"""Parsing and validating protocol files (TOML, docs/protocols.md)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_bridge.stimulus import (
    Polarity,
    format_configuration,
    legacy_pair_configuration,
    parse_configuration,
)
from rig.protocols._checks import check_keys, number_in_range
from rig.protocols._closed_loop import ClosedLoopSpec, parse_closed_loop
from rig.protocols._errors import ProtocolError
from rig.protocols._plan import check_plan_size

FORMAT_VERSION = 1
BLOCK_KINDS = ("sweep",)  # a closed loop is a top-level [closed_loop] table
ORDERS = ("sequential", "random", "random_per_repeat")
POLARITIES = {p.name.lower(): p for p in Polarity}
# Sanity ranges of the file format itself; the rig's safety file narrows them.
RANGES = {
    "amplitude_vpp": (0.0, 20.0, "Vpp"),
    "duration_ms": (0.05, 50.0, "ms"),
    "inter_stimulus_interval_s": (0.01, 3600.0, "s"),
    "pause_before_s": (0.0, 3600.0, "s"),
    "pause_between_repeats_s": (0.0, 3600.0, "s"),
    "repeats": (1, 10_000, ""),
    "n_pulses": (1, 1000, ""),
    "train_rate_hz": (0.01, 1000.0, "Hz"),
    "pair": (0, 7, ""),
}
TOP_KEYS = ["format_version", "protocol", "defaults", "block", "closed_loop"]
PROTOCOL_KEYS = ["name", "description", "seed"]
SETTING_KEYS = [
    "configuration",
    "pairs",
    "polarities",
    "inter_stimulus_interval_s",
    "pause_before_s",
    "pause_between_repeats_s",
    "n_pulses",
    "train_rate_hz",
    "repeats",
    "order",
]
BLOCK_KEYS = [
    "kind",
    "name",
    "amplitude_vpp",
    "duration_ms",
    "duration_s",
    *SETTING_KEYS,
]


@dataclass(frozen=True, slots=True)
class Block:
    """One validated block: the sweep's values and its timing."""

    index: int
    name: str
    amplitudes_vpp: tuple[float, ...]
    durations_s: tuple[float, ...]
    # Electrode configurations swept: "C0-A1", "C3-R", … (the classic pair by default)
    configurations: tuple[str, ...]
    polarities: tuple[Polarity, ...]
    repeats: int
    order: str
    inter_stimulus_interval_s: float
    pause_before_s: float
    n_pulses: int
    train_rate_hz: float
    pause_between_repeats_s: float = 0.0  # a rest after each repeat but the last


@dataclass(frozen=True, slots=True)
class Protocol:
    """A validated protocol file."""

    name: str
    description: str
    seed: int
    blocks: tuple[Block, ...]
    source: str
    text: str
    closed_loop: ClosedLoopSpec | None = None  # a search instead of blocks

    def expand(self, seed: int | None = None):
        """The plan: every trial in order with its scheduled onset."""
        from rig.protocols._plan import expand

        if self.closed_loop is not None:
            raise ProtocolError(
                self.source,
                "closed_loop",
                "a closed-loop protocol has no fixed plan: its stimuli are chosen "
                "during the run",
            )
        return expand(self, self.seed if seed is None else seed)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a pipe nobody writes never ends
        raise ProtocolError(
            str(path),
            "file",
            "not a regular file (a folder, pipe or device); give a protocol file",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError(
            str(path), "file", f"cannot read it: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ProtocolError(
            str(path), "file", "not a protocol file (not UTF-8 text)"
        ) from None
    return parse_protocol(text, source=str(path))


def parse_protocol(text: str, *, source: str = "<string>") -> Protocol:
    """Validate protocol ``text``; raise ProtocolError naming field, value, range.

    >>> protocol = parse_protocol('''
    ... format_version = 1
    ... [protocol]
    ... name = "two amplitudes"
    ... [[block]]
    ... amplitude_vpp = [3.0, 5.0]
    ... duration_ms = 3.0
    ... repeats = 2
    ... ''')
    >>> plan = protocol.expand()
    >>> [(t.onset_s, t.pulse.amplitude_vpp, t.pulse.duration_s) for t in plan]
    [(0.0, 3.0, 0.003), (1.0, 5.0, 0.003), (2.0, 3.0, 0.003), (3.0, 5.0, 0.003)]
    >>> try:
    ...     parse_protocol(protocol.text.replace("amplitude_vpp", "amplitude"))
    ... except ProtocolError as exc:
    ...     print(exc.path, "->", str(exc).split("; ")[1][:30])
    block[0].amplitude -> did you mean 'amplitude_vpp'?
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(source, "file", f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ProtocolError(
            source,
            "file",
            "not a valid protocol file (tables or lists nested too deep)",
        ) from None
    check_keys(source, "", data, TOP_KEYS)
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # not 1.0, not true
        raise ProtocolError(
            source,
            "format_version",
            f"{version!r}; this neurorig reads format_version = {FORMAT_VERSION}",
        )
    head = data.get("protocol", {})
    check_keys(source, "protocol", head, PROTOCOL_KEYS)
    name = head.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProtocolError(
            source, "protocol.name", "missing; give the protocol a name"
        )
    seed = head.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ProtocolError(
            source, "protocol.seed", f"{seed!r}; allowed a whole number ≥ 0"
        )
    defaults = data.get("defaults", {})
    check_keys(source, "defaults", defaults, SETTING_KEYS)
    blocks_raw = data.get("block")
    if "closed_loop" in data:
        if blocks_raw is not None:
            raise ProtocolError(
                source,
                "closed_loop",
                "a protocol has either [[block]] tables or a [closed_loop] table, "
                "not both",
            )
        spec = parse_closed_loop(source, data["closed_loop"])
        description = str(head.get("description", ""))
        return Protocol(name, description, seed, (), source, text, spec)
    if not isinstance(blocks_raw, list) or not blocks_raw:
        raise ProtocolError(
            source, "block", "no [[block]] tables; a protocol needs one"
        )
    blocks = tuple(_block(source, i, raw, defaults) for i, raw in enumerate(blocks_raw))
    check_plan_size(source, blocks)
    return Protocol(name, str(head.get("description", "")), seed, blocks, source, text)


def _number(source: str, path: str, value: Any, key: str) -> float:
    return number_in_range(source, path, value, *RANGES[key])


def _integer(source: str, path: str, value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(source, path, f"{value!r} is not a whole number")
    return int(_number(source, path, value, key))


def _values(source: str, path: str, value: Any, key: str) -> tuple[float, ...]:
    """A list, a single number, or {start, stop, step} / {start, stop, n}."""
    if isinstance(value, dict):
        check_keys(source, path, value, ["start", "stop", "step", "n"])
        if "start" not in value or "stop" not in value:
            raise ProtocolError(source, path, "a range needs start and stop")
        start = _number(source, f"{path}.start", value["start"], key)
        stop = _number(source, f"{path}.stop", value["stop"], key)
        if ("step" in value) == ("n" in value):
            raise ProtocolError(source, path, "give exactly one of step or n")
        if "n" in value:
            n = value["n"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
                raise ProtocolError(source, f"{path}.n", f"{n!r}; allowed 1–1000")
            return tuple(float(v) for v in _linspace(start, stop, n))
        step = value["step"]
        if (
            isinstance(step, bool)
            or not isinstance(step, int | float)
            or not 0 < step <= 1e9  # not NaN, inf or an integer beyond float
        ):
            raise ProtocolError(
                source, f"{path}.step", f"{step!r:.40}; allowed a number > 0"
            )
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count < 1 or count > 1000:
            raise ProtocolError(source, path, f"gives {count} values; allowed 1–1000")
        return tuple(round(start + k * step, 12) for k in range(count))
    if isinstance(value, list):
        if not value:
            raise ProtocolError(source, path, "an empty list; give at least one value")
        return tuple(
            _number(source, f"{path}[{k}]", v, key) for k, v in enumerate(value)
        )
    return (_number(source, path, value, key),)


def _scaled(value: Any, factor: float) -> Any:
    """Multiply the numbers of a value, list or range table (unit conversion)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value * factor
    if isinstance(value, list):
        return [_scaled(v, factor) for v in value]
    if isinstance(value, dict):
        return {k: v if k == "n" else _scaled(v, factor) for k, v in value.items()}
    return value


def _linspace(start: float, stop: float, n: int) -> list[float]:
    if n == 1:
        return [start]
    return [round(start + (stop - start) * k / (n - 1), 12) for k in range(n)]


def _block(source: str, i: int, raw: Any, defaults: dict[str, Any]) -> Block:
    path = f"block[{i}]"
    check_keys(source, path, raw, BLOCK_KEYS)
    kind = raw.get("kind", "sweep")
    if kind not in BLOCK_KINDS:
        raise ProtocolError(
            source, f"{path}.kind", f"{kind!r}; known kinds: {list(BLOCK_KINDS)}"
        )
    merged = {**defaults, **raw}

    def where(key: str) -> str:
        return f"{path}.{key}" if key in raw else f"defaults.{key}"

    if "amplitude_vpp" not in raw:
        raise ProtocolError(source, f"{path}.amplitude_vpp", "missing")
    amplitudes = _values(
        source, where("amplitude_vpp"), raw["amplitude_vpp"], "amplitude_vpp"
    )
    if "duration_ms" in raw and "duration_s" in raw:
        raise ProtocolError(source, path, "give duration_ms or duration_s, not both")
    if "duration_ms" in raw:
        durations = tuple(
            d / 1000
            for d in _values(
                source, f"{path}.duration_ms", raw["duration_ms"], "duration_ms"
            )
        )
    elif "duration_s" in raw:
        in_ms = _scaled(raw["duration_s"], 1000.0)
        values = _values(source, f"{path}.duration_s", in_ms, "duration_ms")
        durations = tuple(d / 1000 for d in values)
    else:
        raise ProtocolError(
            source, f"{path}.duration_ms", "missing (or give duration_s)"
        )
    configurations = _configurations(source, raw, merged, where)
    pol_raw = merged.get("polarities", ["positive_first"])
    pol_raw = pol_raw if isinstance(pol_raw, list) else [pol_raw]
    if not pol_raw:
        raise ProtocolError(
            source,
            where("polarities"),
            f"an empty list; give at least one of {sorted(POLARITIES)}",
        )
    polarities = []
    for k, p in enumerate(pol_raw):
        if not isinstance(p, str) or p not in POLARITIES:
            raise ProtocolError(
                source,
                f"{where('polarities')}[{k}]",
                f"{p!r}; allowed: {sorted(POLARITIES)}",
            )
        polarities.append(POLARITIES[p])
    order = merged.get("order", "sequential")
    if order not in ORDERS:
        raise ProtocolError(
            source, where("order"), f"{order!r}; allowed: {list(ORDERS)}"
        )
    isi = _number(
        source,
        where("inter_stimulus_interval_s"),
        merged.get("inter_stimulus_interval_s", 1.0),
        "inter_stimulus_interval_s",
    )
    n_pulses = _integer(
        source, where("n_pulses"), merged.get("n_pulses", 1), "n_pulses"
    )
    rate = _number(
        source,
        where("train_rate_hz"),
        merged.get("train_rate_hz", 1.0),
        "train_rate_hz",
    )
    if n_pulses > 1:
        train_s = (n_pulses - 1) / rate + max(durations)
        if train_s >= isi:
            raise ProtocolError(
                source,
                where("inter_stimulus_interval_s"),
                f"{isi:g} s is shorter than the {train_s:g} s train; "
                "allowed: longer than the train",
            )
    elif max(durations) >= isi:
        raise ProtocolError(
            source,
            where("inter_stimulus_interval_s"),
            f"{isi:g} s is not longer than the pulse",
        )
    rest = _number(
        source,
        where("pause_between_repeats_s"),
        merged.get("pause_between_repeats_s", 0.0),
        "pause_between_repeats_s",
    )
    if rest > 0 and order == "random":
        raise ProtocolError(
            source,
            where("pause_between_repeats_s"),
            f"{rest:g} s with order 'random', which shuffles the repeats together; "
            "allowed with order 'random_per_repeat' (randomised blocks) or "
            "'sequential'",
        )
    return Block(
        index=i,
        name=str(raw.get("name", f"block {i}")),
        amplitudes_vpp=amplitudes,
        durations_s=durations,
        configurations=configurations,
        polarities=tuple(polarities),
        repeats=_integer(source, where("repeats"), merged.get("repeats", 1), "repeats"),
        order=order,
        inter_stimulus_interval_s=isi,
        pause_before_s=_number(
            source,
            where("pause_before_s"),
            merged.get("pause_before_s", 0.0),
            "pause_before_s",
        ),
        n_pulses=n_pulses,
        train_rate_hz=rate,
        pause_between_repeats_s=rest,
    )


def _configurations(source, raw, merged, where) -> tuple[str, ...]:
    """The block's ``configuration`` axis ("C0-A1", "C3-R", …; one or a list),
    or the old ``pairs`` (pair k = "C<2k>-A<2k+1>"); default the classic pair.
    A block's own key wins over the defaults'."""
    table = raw if ("configuration" in raw or "pairs" in raw) else merged
    if "configuration" in table and "pairs" in table:
        raise ProtocolError(
            source,
            where("configuration"),
            "give configuration or pairs (old), not both",
        )
    if "configuration" not in table and "pairs" not in table:
        return ("C0-A1",)
    key = "configuration" if "configuration" in table else "pairs"
    values = table[key] if isinstance(table[key], list) else [table[key]]
    if not values:  # no configuration: a block of no trials
        raise ProtocolError(
            source, where(key), "an empty list; give at least one configuration"
        )
    if key == "pairs":
        return tuple(
            legacy_pair_configuration(
                _integer(source, f"{where('pairs')}[{k}]", p, "pair")
            )
            for k, p in enumerate(values)
        )
    out = []
    for k, text in enumerate(values):
        try:
            if not isinstance(text, str):
                raise ValueError('allowed text such as "C0-A1" or "C3-R"')
            out.append(format_configuration(*parse_configuration(text)))
        except ValueError as exc:
            detail = str(exc).split(": ", 1)[-1]
            raise ProtocolError(
                source, f"{where('configuration')}[{k}]", f"{text!r}: {detail}"
            ) from None
    if len(set(out)) != len(out):
        raise ProtocolError(
            source, where("configuration"), f"{values!r}: each configuration once"
        )
    return tuple(out)
