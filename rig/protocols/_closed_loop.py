"""The ``[closed_loop]`` table of a protocol file: a search instead of a sweep.

Parsed into a ``ClosedLoopSpec`` (plain values, validated); ``rig.closed_loop``
turns it into a running search (docs/protocols.md, "Closed-loop protocols").
"""

from __future__ import annotations

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
]
OBJECTIVE_KEYS = ["measure", "kind", "target", "per_charge"]


@dataclass(frozen=True, slots=True)
class ObjectiveSpec:
    """What to optimise: a response measure, maximised or brought to a target."""

    measure: str = "amplitude_uv_mean"
    kind: str = "maximise"
    target: float | None = None
    per_charge: bool = False


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

    @property
    def max_duration_s(self) -> float:
        """Longest the run can take (every stimulus on schedule)."""
        return self.n_stimuli * self.inter_stimulus_interval_s


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
    )


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
    return ObjectiveSpec(str(measure), kind, target, per_charge)


def _bounds(source, path, value, low, high, unit) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError(source, path, f"{value!r}; give [low, high] in {unit}")
    a = number_in_range(source, f"{path}[0]", value[0], low, high, unit)
    b = number_in_range(source, f"{path}[1]", value[1], low, high, unit)
    if not a < b:
        raise ProtocolError(source, path, f"[{a:g}, {b:g}]: low must be below high")
    return a, b
