"""The ``[closed_loop]`` table of a protocol file: a search instead of a sweep.

Parsed into a ``ClosedLoopSpec`` (plain values, validated); ``rig.closed_loop``
turns it into a running search (docs/protocols.md, "Closed-loop protocols").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rig.protocols._checks import check_keys, number_in_range
from rig.protocols._errors import ProtocolError

STRATEGIES = ("bayesian", "grid", "random")
OBJECTIVE_KINDS = ("maximise", "target")
KEYS = [
    "strategy",
    "n_stimuli",
    "inter_stimulus_interval_s",
    "amplitude_vpp",
    "duration_ms",
    "pairs",
    "beta",
    "safe_radius",
    "grid",
    "objective",
    "configurations",
    "n_pulses",
    "rate_hz",
    "polarity",
]
OBJECTIVE_KEYS = ["measure", "kind", "target", "per_charge", "minimise_charge",
                  "constraint"]  # fmt: skip
CONSTRAINT_KEYS = ["measure", "max"]
POLARITIES = ("positive_first", "negative_first")


@dataclass(frozen=True, slots=True)
class ConstraintSpec:
    """A second measure to keep at or below ``max`` (e.g. P(MGF) ≤ 0.1)."""

    measure: str
    max: float


@dataclass(frozen=True, slots=True)
class ObjectiveSpec:
    """What to optimise: a response measure, maximised or brought to a target."""

    measure: str = "amplitude_uv_mean"
    kind: str = "maximise"
    target: float | None = None
    per_charge: bool = False
    minimise_charge: bool = False  # Pareto: the response up, the charge down
    constraint: ConstraintSpec | None = None


@dataclass(frozen=True, slots=True)
class ClosedLoopSpec:
    """A validated ``[closed_loop]`` table."""

    strategy: str = "bayesian"
    n_stimuli: int = 30
    inter_stimulus_interval_s: float = 1.0
    amplitude_vpp: tuple[float, float] = (2.0, 6.0)
    duration_s: tuple[float, float] = (2e-3, 6.7e-3)
    pairs: tuple[int, ...] = (0,)
    beta: float = 2.0
    safe_radius: float | None = None
    grid: tuple[int, int] = (9, 8)  # amplitudes × durations, for strategy "grid"
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    # A search over sites (rig.closed_loop.MixedSpace) instead of pairs:
    configurations: tuple[str, ...] | None = None  # "C3-A4", "C3-R"
    n_pulses: tuple[int, ...] = (1,)
    rate_hz: tuple[float, ...] = (1.0,)
    polarities: tuple[int, ...] = (0,)

    @property
    def max_duration_s(self) -> float:
        """Longest the run can take (every stimulus on schedule)."""
        return self.n_stimuli * self.inter_stimulus_interval_s

    def worst_on_time_s(self, window_s: float = 60.0) -> tuple[float, int, float]:
        """The worst case per electrode: (on-time in any ``window_s``, the
        stimuli that fit in it, the longest stimulus's on-time), every stimulus
        at the longest duration and train, all through one electrode (the rig's
        on-time budget counts the trailing 60 s per electrode)."""
        longest = self.duration_s[1] * max(self.n_pulses)
        fit = min(
            self.n_stimuli,
            math.floor(window_s / self.inter_stimulus_interval_s + 1e-9) + 1,
        )
        return fit * longest, fit, longest


def parse_closed_loop(source: str, raw: Any) -> ClosedLoopSpec:
    """Validate a ``[closed_loop]`` table; errors name the field and what is allowed."""
    from rig.closed_loop.measures import check_measure  # validation only

    def where(key: str) -> str:
        return f"closed_loop.{key}"

    check_keys(source, "closed_loop", raw, KEYS)
    strategy = raw.get("strategy", "bayesian")
    if strategy not in STRATEGIES:
        raise ProtocolError(
            source, where("strategy"), f"{strategy!r} is not one of {list(STRATEGIES)}"
        )
    n = raw.get("n_stimuli", 30)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10_000:
        raise ProtocolError(source, where("n_stimuli"), f"{n!r}; allowed 1–10000")
    isi = number_in_range(source, where("inter_stimulus_interval_s"),
                  raw.get("inter_stimulus_interval_s", 1.0), 0.01, 3600.0, "s")  # fmt: skip
    amps = _bounds(source, where("amplitude_vpp"), raw.get("amplitude_vpp", [2.0, 6.0]),
                   0.0, 20.0, "Vpp")  # fmt: skip
    durs = _bounds(source, where("duration_ms"), raw.get("duration_ms", [2.0, 6.7]),
                   0.05, 50.0, "ms")  # fmt: skip
    pairs = raw.get("pairs", [0])
    if (
        not isinstance(pairs, list)
        or not pairs
        or not all(isinstance(p, int) and 0 <= p <= 31 for p in pairs)
    ):
        raise ProtocolError(
            source, where("pairs"), f"{pairs!r}; give a list of pairs 0–31"
        )
    beta = number_in_range(source, where("beta"), raw.get("beta", 2.0), 0.0, 10.0, "")
    radius = raw.get("safe_radius")
    if radius is not None:
        radius = number_in_range(source, where("safe_radius"), radius, 0.01, 1.5, "")
    grid = raw.get("grid", [9, 8])
    if (
        not isinstance(grid, list)
        or len(grid) != 2
        or not all(isinstance(g, int) and 2 <= g <= 100 for g in grid)
    ):
        raise ProtocolError(
            source, where("grid"), f"{grid!r}; give [n_amplitudes, n_durations], 2–100"
        )
    objective = _objective(source, raw.get("objective", {}), check_measure)
    sites = _sites(source, raw)
    if sites["configurations"] is None and (
        objective.minimise_charge or objective.constraint is not None
    ):
        raise ProtocolError(
            source, where("objective"),
            "minimise_charge and constraint need a search over sites: give "
            "closed_loop.configurations (e.g. [\"C0-R\", \"C1-R\"])",
        )  # fmt: skip
    return ClosedLoopSpec(
        strategy=strategy,
        n_stimuli=n,
        inter_stimulus_interval_s=isi,
        amplitude_vpp=amps,
        duration_s=(durs[0] / 1000.0, durs[1] / 1000.0),
        pairs=tuple(pairs),
        beta=beta,
        safe_radius=radius,
        grid=(grid[0], grid[1]),
        objective=objective,
        **sites,
    )


def _sites(source: str, raw: Any) -> dict[str, Any]:
    """The keys of a search over electrode configurations and trains."""
    from firmware_bridge.stimulus import format_configuration, parse_configuration

    out: dict[str, Any] = {"configurations": None}
    configs = raw.get("configurations")
    if configs is not None:
        path = "closed_loop.configurations"
        if not isinstance(configs, list) or not configs:
            raise ProtocolError(source, path, f"{configs!r}; give a list such as "
                                '["C0-R", "C3-A4"]')  # fmt: skip
        texts = []
        for i, text in enumerate(configs):
            try:
                texts.append(format_configuration(*parse_configuration(str(text))))
            except ValueError as exc:
                raise ProtocolError(source, f"{path}[{i}]", str(exc)) from None
        if len(set(texts)) != len(texts):
            raise ProtocolError(source, path, "lists a configuration twice")
        if "pairs" in raw:
            raise ProtocolError(source, "closed_loop.pairs",
                                "give pairs or configurations, not both")  # fmt: skip
        out["configurations"] = tuple(texts)
    for key, kind, low, high in (
        ("n_pulses", int, 1, 100),
        ("rate_hz", float, 0.1, 1000.0),
    ):
        values = raw.get(key)
        if values is None:
            continue
        ok = (
            isinstance(values, list) and values
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    and (kind is float or isinstance(v, int)) and low <= v <= high
                    for v in values)
            and sorted(set(values)) == list(values)
        )  # fmt: skip
        if not ok:
            allowed = f"give ascending distinct values {low:g}–{high:g}"
            raise ProtocolError(source, f"closed_loop.{key}", f"{values!r}; {allowed}")
        out[key] = tuple(kind(v) for v in values)
    polarity = raw.get("polarity")
    if polarity is not None:
        if (not isinstance(polarity, list) or not polarity
                or not all(p in POLARITIES for p in polarity)
                or len(set(polarity)) != len(polarity)):  # fmt: skip
            raise ProtocolError(source, "closed_loop.polarity",
                                f"{polarity!r}; give a list of {list(POLARITIES)}")  # fmt: skip
        out["polarities"] = tuple(sorted(POLARITIES.index(p) for p in polarity))
    if configs is None and len(out) > 1:
        raise ProtocolError(source, "closed_loop.configurations",
                            "n_pulses, rate_hz and polarity are searched over "
                            "configurations: give them too")  # fmt: skip
    return out


def _objective(source: str, raw: Any, check_measure) -> ObjectiveSpec:
    path = "closed_loop.objective"
    check_keys(source, path, raw, OBJECTIVE_KEYS)
    measure = raw.get("measure", "amplitude_uv_mean")
    try:
        check_measure(str(measure))
    except ValueError as exc:
        raise ProtocolError(source, f"{path}.measure", str(exc)) from None
    kind = raw.get("kind", "maximise")
    if kind not in OBJECTIVE_KINDS:
        raise ProtocolError(
            source, f"{path}.kind", f"{kind!r} is not one of {list(OBJECTIVE_KINDS)}"
        )
    target = raw.get("target")
    if kind == "target":
        if target is None:
            raise ProtocolError(
                source, f"{path}.target", "kind 'target' needs a target"
            )
        target = number_in_range(source, f"{path}.target", target, -1e9, 1e9, "")
    per_charge = raw.get("per_charge", False)
    if not isinstance(per_charge, bool):
        raise ProtocolError(
            source, f"{path}.per_charge", f"{per_charge!r}; true or false"
        )
    minimise = raw.get("minimise_charge", False)
    if not isinstance(minimise, bool):
        raise ProtocolError(
            source, f"{path}.minimise_charge", f"{minimise!r}; true or false"
        )
    constraint = None
    if raw.get("constraint") is not None:
        c = raw["constraint"]
        cpath = f"{path}.constraint"
        check_keys(source, cpath, c, CONSTRAINT_KEYS)
        try:
            check_measure(str(c.get("measure")))
        except ValueError as exc:
            raise ProtocolError(source, f"{cpath}.measure", str(exc)) from None
        if "max" not in c:
            raise ProtocolError(source, f"{cpath}.max", "missing; e.g. max = 0.1")
        bound = number_in_range(source, f"{cpath}.max", c["max"], -1e9, 1e9, "")
        constraint = ConstraintSpec(str(c["measure"]), bound)
    if minimise and (constraint is not None or per_charge or kind != "maximise"):
        raise ProtocolError(
            source, f"{path}.minimise_charge",
            "is a Pareto search of a maximised response: not with constraint, "
            "per_charge or kind 'target'",
        )  # fmt: skip
    return ObjectiveSpec(str(measure), kind, target, per_charge, minimise, constraint)


def _bounds(source, path, value, low, high, unit) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError(source, path, f"{value!r}; give [low, high] in {unit}")
    a = number_in_range(source, f"{path}[0]", value[0], low, high, unit)
    b = number_in_range(source, f"{path}[1]", value[1], low, high, unit)
    if not a < b:
        raise ProtocolError(source, path, f"[{a:g}, {b:g}]: low must be below high")
    return a, b
